// pool_map: bench_mp.py's b_pool_map. Pool(2): start to first result (new Pool(2), await
// apply(noop)) and start + shutdown (then close() + join()), median of 10. Then on one Pool(2),
// after a warm-up map over 2 items (chunksize 1): map(square) over 0..999,999 with the default
// chunksize (Python's rule: ceil(N / (4 x workers)) = 125,000) and with chunksize 10,000; 20,000
// applyAsync(square, [i]) submitted, then each get() awaited; the sum over imap(square,
// 0..19,999, chunksize 1). Results are checked as bench_mp.py asserts them.
// Peers, as ../shared/bench/peers/bench_peers.mjs (piscina and tinypool on worker_threads, and
// tinypool on child_process: the process-backed peer for our process backend; 2 workers each):
// the same startup keys, tiny_tasks_per_s (20,000 run(square, i) at once) and
// map_chunk10k_items_per_s (100 tasks of 10,000-element arrays). They run fixtures/pool-peer.mjs
// (bench_peers.mjs's poolMap for one peer) in a copy of ../shared/bench/peers installed with
// `npm ci` in a temporary folder, kept between runs (see installPeers below).

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { noop, square } from '../targets.ts';
import { median, round, type Metrics, type PeerContext, type Workload } from '../workload.ts';

const WORKERS = 2;
const STARTS = 10;
const N = 1_000_000;
const T = 20_000;

function* range(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** (n - 1) n (2n - 1) / 6, exactly: for n = 1e6 it is above 2^53. */
function sumOfSquares(n: number): bigint {
  const b = BigInt(n);
  return ((b - 1n) * b * (2n * b - 1n)) / 6n;
}

function checkSquares(what: string, values: number[], n: number): void {
  if (values.length !== n) throw new Error(`pool_map: ${what}: ${values.length} results, expected ${n}`);
  let sum = 0n;
  for (let i = 0; i < n; i++) {
    if (values[i] !== i * i) throw new Error(`pool_map: ${what}: result ${i} is ${String(values[i])}, expected ${i * i}`);
    sum += BigInt(values[i]!);
  }
  if (sum !== sumOfSquares(n)) throw new Error(`pool_map: ${what}: sum ${sum}, expected ${sumOfSquares(n)}`);
}

const keys = ['startup_first_result_ms', 'startup_shutdown_ms', 'map_default_items_per_s', 'map_chunk10k_items_per_s', 'tiny_tasks_per_s', 'imap_chunk1_items_per_s'];

const workload: Workload = {
  key: 'pool_map',
  describe: `Pool(${WORKERS}): start to first result / + close+join (median of ${STARTS}); map(square) over ${N.toLocaleString('en')} (default chunksize, 10,000); ${T.toLocaleString('en')} applyAsync then get(); imap chunksize 1 over ${T.toLocaleString('en')}`,
  cpython: { subcommand: 'pool_map' },
  show: keys,
  compare: keys,
  backends: ['process', 'thread'],

  async run({ mp, backend }) {
    const { Pool } = mp.getContext(backend);
    const first: number[] = [];
    const whole: number[] = [];
    for (let k = 0; k < STARTS; k++) {
      const t0 = performance.now();
      const pool = new Pool(WORKERS);
      try {
        await pool.apply(noop);
        const t1 = performance.now();
        pool.close();
        await pool.join();
        first.push(t1 - t0);
        whole.push(performance.now() - t0);
      } catch (error) {
        pool.terminate(); // leave no worker behind
        await pool.join();
        throw error;
      }
    }
    const m: Metrics = {
      workers: WORKERS,
      map_items: N,
      tiny_tasks: T,
      map_default_chunksize: Math.ceil(N / (WORKERS * 4)),
      startup_first_result_ms: round(median(first), 2),
      startup_shutdown_ms: round(median(whole), 2),
    };

    const pool = new Pool(WORKERS);
    try {
      await pool.map(noop, [0, 1], 1); // warm-up
      // Python passes range(N) (its map makes a list of it first): the array is built untimed.
      const items = Array.from({ length: N }, (_, i) => i);
      for (const [key, chunksize] of [['map_default_items_per_s', undefined], ['map_chunk10k_items_per_s', 10_000]] as const) {
        const t0 = performance.now();
        const r = await pool.map(square, items, chunksize === undefined ? {} : chunksize);
        m[key] = Math.round(N / ((performance.now() - t0) / 1e3));
        checkSquares(key, r, N);
      }

      let t0 = performance.now();
      const rs = [];
      for (let i = 0; i < T; i++) rs.push(pool.applyAsync(square, [i]));
      const vals: number[] = [];
      for (const r of rs) vals.push(await r.get());
      m.tiny_tasks_per_s = Math.round(T / ((performance.now() - t0) / 1e3));
      checkSquares('tiny tasks', vals, T);

      t0 = performance.now();
      let s = 0;
      for await (const v of pool.imap(square, range(T), 1)) s += v;
      m.imap_chunk1_items_per_s = Math.round(T / ((performance.now() - t0) / 1e3));
      if (BigInt(s) !== sumOfSquares(T)) throw new Error(`pool_map: imap: sum ${s}, expected ${sumOfSquares(T)}`);

      pool.close();
      await pool.join();
    } catch (error) {
      pool.terminate();
      await pool.join();
      throw error;
    }
    return m;
  },

  // Versions pinned by ../shared/bench/peers/package-lock.json (checked at run time).
  peers: [
    { impl: 'piscina-5.3.2', run: (context) => runPeer(context, 'piscina', '5.3.2', 'worker_threads') },
    { impl: 'tinypool-2.2.0', run: (context) => runPeer(context, 'tinypool', '2.2.0', 'worker_threads') },
    { impl: 'tinypool-2.2.0-child_process', run: (context) => runPeer(context, 'tinypool', '2.2.0', 'child_process') },
  ],
};

export default workload;

// ---- peers ----
const INSTALL_TIMEOUT_S = 240;
const PEER_TIMEOUT_S = 180;

/** Runs a command; resolves with its stdout, rejects (with its stderr's tail) on failure or timeout. */
function command(file: string, args: string[], cwd: string, timeoutS: number, what: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolvePromise(stdout);
      const why = timedOut ? `did not finish in ${timeoutS} s` : `exited with ${signal ?? code}`;
      reject(new Error(`${what} ${why}: ${stderr.trim().split('\n').slice(-8).join('\n')}`));
    });
  });
}

/**
 * The peers, installed: a copy of ../shared/bench/peers (read-only there) with `npm ci` run in it,
 * in $TMPDIR/multiproc-bench-peers-<hash of package.json + package-lock.json>. It is kept for the
 * next runs; a new lock file gets a new folder. Installed in a staging folder, then renamed, so an
 * interrupted install is never used.
 */
let installing: Promise<string> | undefined;
function installPeers(fixtures: string): Promise<string> {
  installing ??= (async () => {
    const source = resolve(fixtures, '..', '..', '..', 'shared', 'bench', 'peers');
    if (!existsSync(join(source, 'package-lock.json'))) throw new Error(`pool_map peers: ${source}/package-lock.json not found`);
    const hash = createHash('sha256')
      .update(readFileSync(join(source, 'package.json')))
      .update(readFileSync(join(source, 'package-lock.json')))
      .digest('hex')
      .slice(0, 12);
    const dir = join(tmpdir(), `multiproc-bench-peers-${hash}`);
    const copySources = (to: string) => {
      for (const name of readdirSync(source)) if (name !== 'node_modules') cpSync(join(source, name), join(to, name), { recursive: true });
      copyFileSync(join(fixtures, 'pool-peer.mjs'), join(to, 'pool-peer.mjs'));
    };
    if (!existsSync(join(dir, '.installed'))) {
      process.stderr.write(`bench: pool_map peers: npm ci in ${dir} (once; kept for later runs)...\n`);
      const staging = mkdtempSync(`${dir}.staging-`);
      try {
        copySources(staging);
        await command('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], staging, INSTALL_TIMEOUT_S, `pool_map peers: npm ci in ${staging}`);
        writeFileSync(join(staging, '.installed'), `${new Date().toISOString()}\n`);
        rmSync(dir, { recursive: true, force: true }); // a failed install of an earlier run
        renameSync(staging, dir);
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    }
    copySources(dir); // the fixture and tasks.mjs as they are now
    return dir;
  })();
  return installing;
}

async function runPeer({ fixtures }: PeerContext, pkg: string, version: string, runtime: string): Promise<Metrics> {
  const dir = await installPeers(fixtures);
  const installed = (JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  if (installed !== version) throw new Error(`pool_map peers: ${pkg} ${installed} is installed but the peer is named ${pkg}-${version}: update bench/workloads/pool-map.ts`);
  const out = await command(process.execPath, ['pool-peer.mjs', pkg, runtime], dir, PEER_TIMEOUT_S, `pool_map peer ${pkg} ${runtime}`);
  const line = out.trim().split('\n').pop() ?? '';
  const metrics = JSON.parse(line) as Metrics;
  delete metrics.version;
  return metrics;
}
