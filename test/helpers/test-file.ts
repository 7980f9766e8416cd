// What every test file that starts processes needs, once: a TestChannel open for the whole file,
// a start() that remembers the processes a test started so that endAll() (in the test's
// t.after()) joins them, killing those still running; and at the end of the file, the check that
// no child of it is left.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { descendants, type Context, type Process, type ProcessOptions } from '../../src/index.ts';
import { TestChannel } from './channel.ts';
import { allGone, isNode, isRunning, killStrays } from './processes.ts';

export interface TestFile {
  /** Open from the file's before() to its after(). */
  readonly channel: TestChannel;
  start<A extends unknown[]>(ctx: Context, options: ProcessOptions<A>): Process<A>;
  /** Joins the processes the test started, killing those still running (a test that failed half-way). */
  endAll(): Promise<void>;
}

/**
 * Registers the file's hooks. `cleanup` runs first at the end (ending what the file started
 * outside start(), such as whole programs); then the Node children still running after a moment
 * to exit are strays: killed, and reported (tsx's esbuild service is not one of ours).
 */
export function testFile(cleanup: () => void = () => {}): TestFile {
  let channel: TestChannel | undefined;
  const running = new Set<Process>();
  before(async () => {
    channel = await TestChannel.open();
  });
  after(async () => {
    cleanup();
    const children = descendants(process.pid).filter(isNode);
    const left = (await allGone(children, 2000)) ? [] : children.filter(isRunning);
    killStrays();
    await channel?.close();
    assert.deepEqual(left, [], 'a child of this test file was still running');
  });
  return {
    get channel(): TestChannel {
      if (!channel) throw new Error('the test channel opens in the file\'s before() hook');
      return channel;
    },
    start<A extends unknown[]>(ctx: Context, options: ProcessOptions<A>): Process<A> {
      const p = new ctx.Process<A>(options);
      p.start();
      running.add(p as Process);
      return p;
    },
    async endAll(): Promise<void> {
      for (const p of running) if (p.isAlive()) p.kill();
      await Promise.all([...running].map((p) => p.join()));
      running.clear();
    },
  };
}
