// The examples are programs: each runs here as a user would run it (`node --import tsx <file>`),
// and the test asserts what it prints, its exit code, its empty stderr, and that it leaves no
// process behind. The examples import 'multiproc' itself, which resolves to dist/ (`npm test`
// builds first).

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { allGone } from './helpers/processes.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const timeout = 60_000;
// Python's time.ctime(): 'Sat May  4 15:42:00 2019'.
const ctime = String.raw`\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}`;

interface Run {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

const MARKER = 'MULTIPROC_EXAMPLE_RUN';

/** The pids of live processes whose environment carries this run's marker (children inherit it). */
function markedProcesses(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').includes(`${MARKER}=${marker}\0`)) found.push(Number(name));
    } catch {
      // gone already, or not ours to read
    }
  }
  return found;
}

/** Runs `file` (relative to the repository) as its own program and waits for it to exit. */
async function run(file: string, args: string[] = ['--import', 'tsx']): Promise<Run> {
  const marker = randomUUID();
  const child = spawn(process.execPath, [...args, file], {
    cwd: root,
    env: { ...process.env, [MARKER]: marker },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  // Everything the program started must have ended with it. No event tells us when a process that
  // is not our child dies, so allGone() checks /proc: a bounded wait for a fact.
  const left = markedProcesses(marker);
  assert.ok(await allGone(left, 5000), `${file} left processes running: ${left.join(', ')}`);
  return { pid: child.pid as number, code, signal, stdout, stderr, lines: stdout.split('\n').filter((line) => line !== '') };
}

function assertClean(result: Run, file: string): void {
  assert.equal(result.stderr, '', `${file} wrote to stderr`);
  assert.equal(result.signal, null);
  assert.equal(result.code, 0, `${file} exited with ${result.code}`);
}

before(() => {
  assert.ok(existsSync(`${root}/dist/index.js`), "the examples import 'multiproc', which is dist/: run `npm run build` first (npm test does)");
});

describe('examples/seed', () => {
  it('01-process-by-function prints `hello alvin <ctime>` from three processes, then `end`', { timeout }, async () => {
    const file = 'examples/seed/01-process-by-function.ts';
    const result = await run(file);
    assertClean(result, file);
    assert.equal(result.lines.length, 4, result.stdout);
    for (const line of result.lines.slice(0, 3)) assert.match(line, new RegExp(`^hello alvin ${ctime}$`));
    assert.equal(result.lines[3], 'end');
  });

  it('02-process-by-subclass prints `hello MyProcess-N <ctime>` once for each of 1..3, then `end`', { timeout }, async () => {
    const file = 'examples/seed/02-process-by-subclass.ts';
    const result = await run(file);
    assertClean(result, file);
    assert.equal(result.lines.length, 4, result.stdout);
    const names = result.lines.slice(0, 3).map((line) => {
      const match = new RegExp(`^hello (MyProcess-\\d+) ${ctime}$`).exec(line);
      assert.ok(match, `unexpected line: ${JSON.stringify(line)}`);
      return match[1];
    });
    assert.deepEqual(names.sort(), ['MyProcess-1', 'MyProcess-2', 'MyProcess-3']);
    assert.equal(result.lines[3], 'end');
  });

  it("03-pid-and-terminate prints the pids and ppids, isAlive() true then false, and exitCode -15", { timeout }, async () => {
    const file = 'examples/seed/03-pid-and-terminate.ts';
    const result = await run(file);
    assertClean(result, file);
    assert.equal(result.lines.length, 6, result.stdout);
    const [main, child, started, alive, after, exitCode] = result.lines as [string, string, string, string, string, string];

    const mainMatch = /^main process: pid (\d+), ppid (\d+)$/.exec(main);
    assert.ok(mainMatch, main);
    assert.equal(Number(mainMatch[1]), result.pid, 'the main process is the program we started');
    assert.equal(Number(mainMatch[2]), process.pid, 'and its parent is this test');

    const childMatch = /^child process: pid (\d+), ppid (\d+)$/.exec(child);
    assert.ok(childMatch, child);
    assert.notEqual(Number(childMatch[1]), result.pid, 'the child is another process');
    assert.equal(Number(childMatch[2]), result.pid, "the child's ppid is the main process");

    const startedMatch = /^Process-2 started, pid (\d+)$/.exec(started);
    assert.ok(startedMatch, started);
    assert.ok(![result.pid, Number(childMatch[1])].includes(Number(startedMatch[1])));

    assert.equal(alive, 'isAlive(): true');
    assert.equal(after, 'after terminate() and join(): isAlive(): false');
    assert.equal(exitCode, 'exitCode: -15');
  });
});

describe('npm run demo', () => {
  // The demo runs all eight seed programs and the tour: give it room on a loaded 2-core machine.
  it('runs every seed program and the tour under a header each, and exits 0', { timeout: 300_000 }, async () => {
    const script = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')).scripts.demo as string;
    assert.equal(script, 'node --import tsx examples/demo.ts');
    const result = await run('examples/demo.ts');
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const headers = result.lines.filter((line) => line.startsWith('=== '));
    assert.deepEqual(headers.map((h) => /\((examples\/[^)]+)\) ===$/.exec(h)?.[1]), [
      'examples/seed/01-process-by-function.ts',
      'examples/seed/02-process-by-subclass.ts',
      'examples/seed/03-pid-and-terminate.ts',
      'examples/seed/04-lock.ts',
      'examples/seed/05-queue.ts',
      'examples/seed/06-pipe.ts',
      'examples/seed/07-pool.ts',
      'examples/seed/08-manager.ts',
      'examples/tour.ts',
    ]);
    assert.ok(result.lines.filter((line) => line === 'end').length >= 2, 'both process seeds print end');
    // The tour's failing target: Python's "Process Process-N:" and the stack, on stderr, and exitCode 1.
    assert.match(result.stderr, /^Process Process-\d+:\nError: something went wrong in the child\n/m);
    assert.match(result.stdout, /Process-\d+ exitCode: 1\n/);
    assert.match(result.stdout, /killTree\(\) ended 3 processes; Process-\d+ exitCode: -15\n/);
    assert.match(result.stdout, /pool\.map\(partial\(scale, 10\), \[1, 2, 3\]\) -> \[10,20,30\]\n/);
    assert.match(result.stdout, /the client got: HELLO \(from Process-\d+, pid \d+\)\n/);
    assert.match(result.stderr, /^\[INFO\/Process-\d+\] child process calling self\.run\(\)$/m);
  });
});
