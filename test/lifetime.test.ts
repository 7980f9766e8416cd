// How children end with their parent: Python's atexit rules at a normal exit, no orphans when the
// parent is SIGKILLed, and a quiet end for the whole program on Ctrl-C.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TestChannel, type Message } from './helpers/channel.ts';
import { allGone, isRunning, killStrays } from './helpers/processes.ts';

const timeout = 30_000;
const parentScript = fileURLToPath(new URL('./fixtures/lifetime/parent.ts', import.meta.url));
const noAddonParent = fileURLToPath(new URL('./fixtures/lifetime/no-addon-parent.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../dist', import.meta.url));
const built = existsSync(join(dist, 'index.js')) ? false : 'dist/ is not built: run `npm run build` (`npm test` does)';
let channel: TestChannel;
const started: ChildProcess[] = [];

before(async () => {
  channel = await TestChannel.open();
});

after(async () => {
  for (const program of started) program.kill('SIGKILL');
  killStrays();
  await channel.close();
});

interface Spec {
  label: string;
  backend: 'process' | 'thread';
  daemon: boolean;
  spin?: boolean;
}

/** Runs the parent program with these children; resolves once all are ready and its main code is done. */
async function runParent(specs: Spec[], options: { detached?: boolean } = {}) {
  const program = spawn(process.execPath, [...process.execArgv, parentScript, channel.path, JSON.stringify(specs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  started.push(program);
  let stderr = '';
  program.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(program, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const ready = new Map<string, Message>();
  for (const { label } of specs) ready.set(label, await channel.event('ready', (m) => m.label === label));
  await channel.event('main-done', (m) => m.pid === program.pid);
  return { program, exited, ready, stderr: () => stderr };
}

const pidOf = (ready: Map<string, Message>, label: string) => ready.get(label)?.pid as number;

describe('at a normal exit of the main process', () => {
  it('non-daemonic children are waited for and daemonic ones terminated', { timeout }, async () => {
    const { program, exited, ready } = await runParent([
      { label: 'exit:worker', backend: 'process', daemon: false },
      { label: 'exit:daemon', backend: 'process', daemon: true },
      { label: 'exit:thread-worker', backend: 'thread', daemon: false },
    ]);
    // The main code is done, but the non-daemonic children still run, so the program does too.
    assert.equal(program.exitCode, null);
    channel.broadcast({ release: 'exit:worker' });
    await channel.event('released', (m) => m.label === 'exit:worker');
    assert.equal(program.exitCode, null, 'a non-daemonic thread still runs');
    channel.broadcast({ release: 'exit:thread-worker' });
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [0, null]);
    assert.ok(await allGone([pidOf(ready, 'exit:daemon')], 2000), 'the daemonic child was terminated at exit');
  });
});

describe('when the parent is SIGKILLed', () => {
  it('its daemonic children are gone within 2 s; non-daemonic ones run on, as in Python', { timeout }, async () => {
    const { program, exited, ready } = await runParent([
      { label: 'kill:daemon-1', backend: 'process', daemon: true },
      { label: 'kill:daemon-2', backend: 'process', daemon: true },
      { label: 'kill:orphan', backend: 'process', daemon: false },
    ]);
    program.kill('SIGKILL');
    await exited;
    const daemons = [pidOf(ready, 'kill:daemon-1'), pidOf(ready, 'kill:daemon-2')];
    assert.ok(await allGone(daemons, 2000), `daemonic children still running: ${daemons.filter(isRunning)}`);
    const orphan = pidOf(ready, 'kill:orphan');
    assert.ok(isRunning(orphan), 'the non-daemonic child outlives its parent');
    channel.broadcast({ release: 'kill:orphan' });
    await channel.event('released', (m) => m.label === 'kill:orphan');
    assert.ok(await allGone([orphan], 5000));
  });
});

describe('when the parent is SIGKILLed while a daemonic child is busy in synchronous code', () => {
  it('the kernel ends the child (PDEATHSIG), though its event loop never turns', { timeout }, async () => {
    const { program, exited, ready } = await runParent([
      { label: 'pdeath:spinner', backend: 'process', daemon: true, spin: true },
      // keeps the parent running until the test kills it
      { label: 'pdeath:keeper', backend: 'process', daemon: false },
    ]);
    program.kill('SIGKILL');
    await exited;
    const spinner = pidOf(ready, 'pdeath:spinner');
    assert.ok(await allGone([spinner], 2000), 'the spinning daemonic child is gone');
    channel.broadcast({ release: 'pdeath:keeper' });
    await channel.event('released', (m) => m.label === 'pdeath:keeper');
  });
});

describe('when the parent is SIGKILLed and the native addon is not built', () => {
  it('its daemonic child sees that it was re-parented and ends within 2 s', { timeout, skip: built }, async () => {
    // A copy of dist/ with nothing beside it: the library finds no build/ for the addon.
    const root = mkdtempSync(join(tmpdir(), 'multiproc-no-addon-'));
    try {
      cpSync(dist, join(root, 'dist'), { recursive: true });
      const program = spawn(process.execPath, [noAddonParent], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, MULTIPROC_TEST_LIBRARY: pathToFileURL(join(root, 'dist/index.js')).href },
      });
      started.push(program);
      // One line from the parent, one from the child once its target runs, in either order.
      const reports: { addon?: boolean; listened?: string; child?: number } = {};
      for await (const line of createInterface({ input: program.stdout })) {
        Object.assign(reports, JSON.parse(line));
        if ('addon' in reports && 'child' in reports) break;
      }
      assert.equal(reports.addon, false, 'the copy of the library loaded the native addon');
      assert.equal(reports.listened, 'over a Listener without the addon');
      program.kill('SIGKILL');
      await once(program, 'exit');
      assert.ok(await allGone([reports.child as number], 2000), 'the daemonic child is gone');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('Ctrl-C (SIGINT to the process group)', () => {
  it('ends the program and all its children, without a hang or a stack trace', { timeout }, async () => {
    const { program, exited, ready, stderr } = await runParent(
      [
        { label: 'int:worker', backend: 'process', daemon: false },
        { label: 'int:daemon', backend: 'process', daemon: true },
        { label: 'int:thread', backend: 'thread', daemon: false },
      ],
      { detached: true },
    );
    process.kill(-(program.pid as number), 'SIGINT');
    const [code, signal] = await exited;
    assert.ok(signal === 'SIGINT' || code === 130, `ended by ${signal ?? code}`);
    const children = [pidOf(ready, 'int:worker'), pidOf(ready, 'int:daemon')];
    assert.ok(await allGone(children, 2000), `children still running: ${children.filter(isRunning)}`);
    assert.equal(stderr(), '');
  });
});
