import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { descendants, killTree } from '../src/process-tree.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/tree/node.mjs', import.meta.url));
const TIMEOUT = 10_000;

/** The spec a fixture node reads (see test/fixtures/tree/node.mjs). */
interface Spec { ignoreTerm?: boolean; detached?: boolean; zombie?: boolean; forkLoop?: boolean; children?: Spec[] }
/** The ready line a fixture node prints once its whole subtree is up. */
interface Ready { pid: number; zombie?: number; children: Ready[] }

interface Tree {
  /** The value of MP_TREE_TAG in the environment of every member, however it was re-parented. */
  tag: string;
  child: ChildProcess;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  root: Ready;
  /** Live members by depth below the root: levels[0] = children, levels[1] = grandchildren, ... */
  levels: number[][];
}

function levelsOf(root: Ready): number[][] {
  const levels: number[][] = [];
  for (let level = root.children; level.length > 0; level = level.flatMap((node) => node.children)) {
    levels.push(level.map((node) => node.pid));
  }
  return levels;
}

function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2).split(' '); // [0] state, [1] ppid, [3] session
  } catch {
    return null; // gone and reaped
  }
}

const isRunning = (pid: number): boolean => !['Z', 'X', undefined].includes(statFields(pid)?.[0]);

/** Running processes (not zombies) carrying `MP_TREE_TAG=<tag>`: the members of one fixture tree. */
function tagged(tag: string): number[] {
  const needle = `\0MP_TREE_TAG=${tag}\0`;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return `\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(needle) && isRunning(pid);
      } catch {
        return false; // gone, or another user's process: not ours either way
      }
    });
}

const byNumber = (a: number, b: number): number => a - b;

function sigkill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // ESRCH: already gone
  }
}

/** Starts a fixture tree, waits for its ready line, and registers a cleanup that kills any member left. */
async function startTree(t: TestContext, spec: Spec): Promise<Tree> {
  const tag = randomUUID();
  const env = { ...process.env, MP_TREE_TAG: tag };
  const child = spawn(process.execPath, [FIXTURE, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => tagged(tag).forEach(sigkill));
  const lines = createInterface({ input: child.stdout! });
  const root = await Promise.race([
    once(lines, 'line').then(([line]) => JSON.parse(line as string) as Ready),
    exited.then(([code, signal]) => assert.fail(`fixture tree exited before ready (code ${code}, signal ${signal})`)),
  ]);
  return { tag, child, exited, root, levels: levelsOf(root) };
}

// child -> grandchild (setsid) -> great-grandchild, plus a second child.
const THREE_LEVELS: Spec = { children: [{ children: [{ detached: true, children: [{}] }] }, {}] };

describe('descendants()', () => {
  it('finds children, a setsid() grandchild and a great-grandchild, breadth-first', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, THREE_LEVELS);
    const [children, grandchildren, greatGrandchildren] = tree.levels;
    const grandchild = grandchildren![0]!;
    assert.equal(statFields(grandchild)?.[3], String(grandchild), 'the grandchild leads its own session');

    const found = descendants(tree.child.pid!);

    assert.deepEqual(new Set(found.slice(0, 2)), new Set(children));
    assert.deepEqual(found.slice(2), [grandchild, ...greatGrandchildren!]);
  });

  it('leaves out a zombie child', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, { children: [{ zombie: true }] });
    const parent = tree.root.children[0]!;
    assert.equal(statFields(parent.zombie!)?.[0], 'Z', 'the fixture made a zombie');

    assert.deepEqual(descendants(tree.child.pid!), [parent.pid]);
  });

  it('returns [] for a process without children and for a pid that does not exist', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, {});
    const gone = spawn(process.execPath, ['-e', '']);
    await once(gone, 'exit'); // reaped: its pid names no process now

    assert.deepEqual(descendants(tree.child.pid!), []);
    assert.deepEqual(descendants(gone.pid!), []);
  });

  it('throws a TypeError naming the fix for a pid that is not a positive integer', { timeout: TIMEOUT }, () => {
    for (const [pid, shown] of [[0, '0 (number)'], [-1, '-1 (number)'], [1.5, '1.5 (number)'], ['12', '"12" (string)']]) {
      assert.throws(() => descendants(pid as number), {
        name: 'TypeError',
        code: 'ERR_MP_INVALID_ARGUMENT',
        message: `descendants(): expected \`pid\` to be a positive integer, got ${shown}.`,
      });
    }
  });
});

describe('killTree()', () => {
  it('ends a three-level tree including a setsid() grandchild and resolves with every pid, root first', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, THREE_LEVELS);
    const all = [tree.child.pid!, ...tree.levels.flat()];

    const ended = await killTree(tree.child.pid!);

    assert.equal(ended[0], tree.child.pid);
    assert.deepEqual([...ended].sort(byNumber), [...all].sort(byNumber));
    assert.deepEqual(all.filter(isRunning), []);
    assert.deepEqual(tagged(tree.tag), []);
    assert.deepEqual(await tree.exited, [null, 'SIGTERM']);
  });

  it('sends the `signal` option', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, {});

    assert.deepEqual(await killTree(tree.child.pid!, { signal: 'SIGINT' }), [tree.child.pid]);
    assert.deepEqual(await tree.exited, [null, 'SIGINT']);
  });

  it('sends SIGKILL after `timeout` to members that ignore SIGTERM', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, {
      ignoreTerm: true,
      children: [{ ignoreTerm: true, children: [{ ignoreTerm: true, detached: true }] }],
    });
    const all = [tree.child.pid!, ...tree.levels.flat()];

    const ended = await killTree(tree.child.pid!, { timeout: 200 });

    assert.deepEqual([...ended].sort(byNumber), [...all].sort(byNumber));
    assert.deepEqual(all.filter(isRunning), []);
    assert.deepEqual(tagged(tree.tag), []);
    assert.deepEqual(await tree.exited, [null, 'SIGKILL']);
  });

  it('with `then: null`, leaves a SIGTERM-ignoring member running (not stopped) and out of the result', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, { children: [{ ignoreTerm: true, children: [{}] }] });
    const [[stubborn], [grandchild]] = tree.levels as [[number], [number]];

    const ended = await killTree(tree.child.pid!, { timeout: 100, then: null });

    assert.deepEqual([...ended].sort(byNumber), [tree.child.pid!, grandchild].sort(byNumber));
    assert.ok(isRunning(stubborn), 'the SIGTERM-ignoring member is alive');
    assert.notEqual(statFields(stubborn)?.[0], 'T', 'killTree() continued the member it had stopped');
    assert.deepEqual(tagged(tree.tag), [stubborn]);
  });

  it('stops a member that keeps forking, so none of its children escapes', { timeout: TIMEOUT }, async (t) => {
    const tree = await startTree(t, { children: [{ forkLoop: true }] });

    const ended = await killTree(tree.child.pid!);

    assert.ok(ended.length >= 2, 'the root, the forking member and the children it had started');
    assert.deepEqual(tagged(tree.tag), []);
  });

  it('resolves [] for a pid that does not exist', { timeout: TIMEOUT }, async () => {
    const gone = spawn(process.execPath, ['-e', '']);
    await once(gone, 'exit'); // reaped: its pid names no process now

    assert.deepEqual(await killTree(gone.pid!), []);
  });

  it('rejects invalid options with a message naming the fix', { timeout: TIMEOUT }, async () => {
    const timeoutMessage = 'killTree(): expected `timeout` to be a non-negative number of milliseconds, got';
    const signalMessage = 'to be a signal name from os.constants.signals (such as "SIGTERM") or a number from 1 to 64, got';
    const cases: [unknown, object][] = [
      [{ timeout: -1 }, { name: 'RangeError', code: 'ERR_MP_OUT_OF_RANGE', message: `${timeoutMessage} -1 (number).` }],
      [{ timeout: Number.NaN }, { name: 'RangeError', message: `${timeoutMessage} NaN (number).` }],
      [{ timeout: '5' }, { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT', message: `${timeoutMessage} "5" (string).` }],
      [{ signal: 'SIGFOO' }, { name: 'TypeError', message: `killTree(): expected \`signal\` ${signalMessage} "SIGFOO" (string).` }],
      [{ then: 0 }, { name: 'TypeError', message: `killTree(): expected \`then\` ${signalMessage} 0 (number).` }],
      [null, { name: 'TypeError', message: 'killTree(): expected `options` to be an object or undefined, got null.' }],
    ];
    for (const [options, expected] of cases) {
      // Validation happens before any process is looked at, so our own pid is never in danger here.
      await assert.rejects(killTree(process.pid, options as never), expected);
    }
  });

  it('rejects a bad pid, pid 1, this process and its parent with a TypeError', { timeout: TIMEOUT }, async () => {
    await assert.rejects(killTree(0), { name: 'TypeError', message: 'killTree(): expected `pid` to be a positive integer, got 0 (number).' });
    await assert.rejects(killTree(1), { name: 'TypeError', message: /refusing to kill pid 1 \(init\)/ });
    for (const pid of [process.pid, process.ppid]) {
      await assert.rejects(killTree(pid), { name: 'TypeError', code: 'ERR_MP_INVALID_ARGUMENT', message: /this process .* or its ancestor/ });
    }
  });
});
