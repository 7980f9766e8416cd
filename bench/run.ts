// npm run bench [-- BENCH... --json --pinned --rounds N --lib dist|src --backends process,thread]
// Runs our workloads (bench/workloads/*.ts) on each backend, the bare-Node peers and the CPython
// anchor (bench/cpython/bench_mp.py) in one run, each in a fresh process with NODE_EXTRA_CA_CERTS
// and NODE_OPTIONS unset. Writes the JSON lines to bench/results/<UTC date-time>.jsonl and prints
// a table with the ratios ours / CPython; --json prints only the JSON lines. See bench/README.md.

import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { compileBench } from './compile.ts';
import { benchDir, loadRegistry, type Entry } from './registry.ts';
import { benchTable, type Line } from './report.ts';
import type { BackendName } from './workload.ts';
import type { WorkerConfig } from './worker.ts';

const USAGE = `usage: npm run bench -- [BENCH... | all] [options]

  BENCH                 one or more of: %BENCHES% (default: all)
  --json                print only the JSON lines on stdout (no results file, no table)
  --pinned              run every measured process under \`taskset -c 0\`
  --rounds N            run each bench's implementations N times, one after the other in turn,
                        and print medians, and the median and range of the rounds' ratios
                        (default 1; this machine's speed drifts: 3 or 5 make ratios steadier)
  --lib dist|src        measure the compiled dist/ (default; rebuilt when older than src/)
                        or src/ through tsx (every child then loads tsx too)
  --backends LIST       our backends, comma-separated (default: process,thread)
  --skip-cpython        do not run the CPython anchor
  --skip-peers          do not run the bare-Node baselines
  -h, --help`;

const UNSET = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'];
const repo = join(benchDir, '..');
const registry = await loadRegistry();

function usage(problem?: string): never {
  const text = USAGE.replace('%BENCHES%', registry.map((e) => e.workload.key).join(', '));
  if (problem) console.error(`bench: ${problem}\n`);
  console.error(text);
  process.exit(problem ? 2 : 0);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      pinned: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '1' },
      lib: { type: 'string', default: 'dist' },
      backends: { type: 'string', default: 'process,thread' },
      'skip-cpython': { type: 'boolean', default: false },
      'skip-peers': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (error) {
  usage((error as Error).message);
}
const { values: opts, positionals } = parsed;
if (opts.help) usage();
if (opts.lib !== 'dist' && opts.lib !== 'src') usage(`--lib must be dist or src, got '${opts.lib}'`);
const lib: 'dist' | 'src' = opts.lib;
const rounds = Number(opts.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) usage(`--rounds takes a whole number from 1 to 50, got '${opts.rounds}'`);
const backends = opts.backends.split(',').map((b) => b.trim()) as BackendName[];
if (backends.some((b) => b !== 'process' && b !== 'thread')) usage(`--backends takes process and/or thread, got '${opts.backends}'`);
const wanted = positionals.length === 0 || positionals.includes('all') ? registry.map((e) => e.workload.key) : positionals;
const unknown = wanted.filter((key) => !registry.some((e) => e.workload.key === key));
if (unknown.length > 0) usage(`unknown bench ${unknown.join(', ')}`);
const selected = registry.filter((e) => wanted.includes(e.workload.key));

const log = (text: string) => process.stderr.write(`${text}\n`);

// ---- the library under test ----
function newestMtime(dir: string): number {
  return Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((d) => {
    const path = join(dir, d.name);
    return d.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
  }));
}

/** Rebuilds dist/ when it is missing or older than src/; returns what the lines should say. */
function ensureBuilt(): Record<string, unknown> {
  const entry = join(repo, 'dist', 'index.js');
  const builtAt = () => (existsSync(entry) ? statSync(entry).mtimeMs : 0);
  const before = builtAt();
  let build = 'up to date';
  if (before < newestMtime(join(repo, 'src'))) {
    log('bench: dist/ is missing or older than src/: npm run build');
    // stdout to our stderr: with --json, stdout carries only JSON lines.
    const status = spawnSync('npm', ['run', 'build'], { cwd: repo, stdio: ['ignore', 2, 2] }).status;
    // tsc emits even when it reports type errors (src/ being edited by someone else, say).
    const emitted = builtAt() > before;
    build = status === 0 ? 'rebuilt' : emitted ? 'rebuilt, tsc reported errors' : 'stale: the build failed';
    if (!emitted && before === 0) {
      log('bench: the build failed and there is no dist/ to measure; fix the build (npm run build) and run again.');
      process.exit(1);
    }
    if (status !== 0) log(`bench: npm run build failed; measuring dist/ anyway (${build}).`);
  }
  return { lib_build: build, lib_built: new Date(builtAt()).toISOString() };
}

const libInfo = lib === 'dist' ? ensureBuilt() : {};
const libUrl = pathToFileURL(join(repo, lib === 'dist' ? 'dist/index.js' : 'src/index.ts')).href;
const compiled = lib === 'dist' ? compileBench(benchDir) : null;
const workerCommand = compiled
  ? [process.execPath, join(compiled, 'worker.js')]
  : [process.execPath, '--import', 'tsx', join(benchDir, 'worker.ts')];

// ---- measured processes: clean environment, optional pinning ----
const env = { ...process.env };
for (const name of UNSET) delete env[name];
const prefix = opts.pinned ? ['taskset', '-c', '0'] : [];
let current: ReturnType<typeof spawn> | null = null;

// Each measured command runs in its own process group, so that a timeout or Ctrl-C also ends
// the processes it started.
function killGroup(child: ReturnType<typeof spawn> | null, signal: NodeJS.Signals): void {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}
process.on('exit', () => {
  killGroup(current, 'SIGKILL');
  if (compiled) rmSync(compiled, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

/** Runs one command and returns the JSON lines it prints; other stdout goes to our stderr. */
function jsonLines(command: string[], timeoutS: number, what: string): Promise<{ lines: Line[]; error: string | null }> {
  const [file, ...args] = [...prefix, ...command] as [string, ...string[]];
  const child = spawn(file, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  current = child;
  const lines: Line[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    if (text.startsWith('{')) {
      try {
        lines.push(JSON.parse(text) as Line);
        return;
      } catch {
        // not ours: pass it on below
      }
    }
    process.stderr.write(`${text}\n`);
  });
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutS * 1000);
  return new Promise((resolve) => {
    child.on('error', (error) => resolve({ lines, error: `${what}: ${error.message}` }));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      resolve({ lines, error: code === 0 ? null : `${what}: exit ${signal ?? code}` });
    });
  });
}

// ---- output ----
const started = new Date();
const stamp = started.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace(/^(\d{4})(\d\d)(\d\d)/, '$1-$2-$3');
const resultsFile = opts.json ? null : join(benchDir, 'results', `${stamp}.jsonl`);
if (resultsFile) mkdirSync(join(benchDir, 'results'), { recursive: true });
const file = resultsFile ? createWriteStream(resultsFile) : null;
const all: Line[] = [];
let failures = 0;

function record(line: Line): void {
  all.push(line);
  const text = `${JSON.stringify(line)}\n`;
  if (file) file.write(text);
  else process.stdout.write(text);
}

function output(command: string[]): string {
  const run = spawnSync(command[0]!, command.slice(1), { cwd: repo, encoding: 'utf8' });
  return run.status === 0 ? `${run.stdout}${run.stderr}`.trim() : '';
}

const python = output(['python3', '--version']).replace(/^Python /, '');
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3);
const caCerts = Boolean(process.env.NODE_EXTRA_CA_CERTS);
const meta: Line = {
  bench: '_meta',
  file: resultsFile ? relative(repo, resultsFile) : null,
  date: started.toISOString().replace(/\.\d+Z$/, 'Z'),
  kernel: release(),
  cpu: cpus()[0]?.model ?? '?',
  nproc: cpus().length,
  node: process.version,
  python: python || null,
  git: output(['git', 'rev-parse', '--short', 'HEAD']) || null,
  src_dirty: output(['git', 'status', '--porcelain', '--', 'src']) !== '',
  lib,
  ...libInfo,
  pinned: opts.pinned,
  rounds,
  loadavg_start: loadavg(),
  env_unset: UNSET,
  // The caller's environment: the measured processes run without these.
  node_extra_ca_certs_in_caller: caCerts,
  node_options_in_caller: Boolean(process.env.NODE_OPTIONS),
};
record(meta);
checkAnchorCopy();

function checkAnchorCopy(): void {
  const original = join(repo, '..', 'shared', 'bench', 'python', 'bench_mp.py');
  if (!existsSync(original)) return;
  // The copy is the original plus one comment block after the shebang line.
  const copy = readFileSync(join(benchDir, 'cpython', 'bench_mp.py'), 'utf8').split('\n');
  let end = 1;
  while (copy[end]?.startsWith('#')) end++;
  if ([copy[0], ...copy.slice(end)].join('\n') !== readFileSync(original, 'utf8')) {
    log(`bench: bench/cpython/bench_mp.py differs from ${relative(repo, original)}: copy it again (keep the header).`);
  }
}

async function measure(entry: Entry): Promise<void> {
  const { workload, file } = entry;
  const timeoutS = workload.timeoutS ?? 300;
  const base = { key: workload.key, file, lib, libUrl, fixtures: join(benchDir, 'fixtures') };
  const runs: { what: string; config?: WorkerConfig; command?: string[]; failed: Line }[] = [];
  for (const backend of workload.backends.filter((b) => backends.includes(b))) {
    runs.push({
      what: `multiproc ${backend}`,
      config: { ...base, mode: 'ours', backend },
      failed: { bench: workload.key, impl: 'multiproc', backend, lib },
    });
  }
  if (!opts['skip-peers'] && (workload.peers ?? []).length > 0) {
    runs.push({ what: 'peers', config: { ...base, mode: 'peers' }, failed: { bench: workload.key, impl: workload.peers!.map((p) => p.impl).join(',') } });
  }
  if (!opts['skip-cpython'] && workload.cpython && python) {
    const { subcommand, args = [] } = workload.cpython;
    runs.push({
      what: `cpython ${subcommand}`,
      command: ['python3', join(benchDir, 'cpython', 'bench_mp.py'), subcommand, ...args],
      failed: { bench: workload.key, impl: 'cpython-multiprocessing' },
    });
  }
  // Round by round, every implementation in turn: each round's ratios compare runs made close
  // together. CPython stays last, and the others start one further along at each round, so that
  // a different one runs right after CPython each time: on this machine whatever ran first after
  // CPython's pool_map ran its map() 2-3x slower (our process backend, every round, when the order
  // was fixed).
  const others = runs.slice(0, -1);
  const last = runs.at(-1);
  for (let round = 1; round <= rounds; round++) {
    const tag: Line = rounds > 1 ? { round } : {};
    const shift = others.length === 0 ? 0 : (round - 1) % others.length;
    for (const run of [...others.slice(shift), ...others.slice(0, shift), ...(last ? [last] : [])]) {
      log(`bench: ${workload.key}: ${run.what}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''}...`);
      const command = run.command ?? [...workerCommand, JSON.stringify(run.config)];
      const { lines, error } = await jsonLines(command, timeoutS, `${workload.key} ${run.what}`);
      for (const line of lines) record({ ...line, ...tag });
      if (error) {
        failures++;
        log(`bench: ${error}`);
        record({ ...run.failed, ...tag, error });
      }
    }
  }
}

for (const entry of selected) await measure(entry);
record({ bench: '_meta_end', loadavg_end: loadavg() });
if (file) await new Promise((resolve) => file.end(resolve));

if (!opts.json) {
  const lines: string[] = [];
  const built = lib === 'dist' ? `dist/ built ${String(libInfo.lib_built)} (${String(libInfo.lib_build)})` : 'src/ through tsx';
  lines.push(
    `multiproc bench ${String(meta.date)}: node ${process.version}, python ${python || 'absent'}, ${cpus().length} CPUs` +
      `${opts.pinned ? ', pinned to CPU 0' : ''}, git ${String(meta.git)}${meta.src_dirty ? ' (src/ modified)' : ''}`,
    `measured: ${built}; load average ${loadavg().join(' ')} (start ${(meta.loadavg_start as string[]).join(' ')})`,
    `NODE_EXTRA_CA_CERTS ${caCerts ? 'was set in your environment' : 'was not set'}; every measured process ran without it and NODE_OPTIONS` +
      `${caCerts ? ' (with it, each Node start costs ~40-60 ms more)' : ''}.`,
  );
  for (const entry of selected) lines.push('', benchTable(entry.workload, all));
  lines.push('', `JSON lines: ${relative(process.cwd(), resultsFile!)}`);
  console.log(lines.join('\n'));
}
process.exitCode = failures > 0 ? 1 : 0;
