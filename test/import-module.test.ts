// How a child loads modules (src/internal/import-module.ts): with require() where that gives what
// import() gives, so that it never starts Node's asynchronous module loader (5-10 ms of a worker's
// start); with import() for a module with a top-level await, a missing module (import()'s error),
// every module of a program run with module hooks (--import tsx), and an ES module in a worker
// thread (terminating a thread while require() links one aborts the process on Node 20). Also that a child process
// leaves node:worker_threads unloaded (src/internal/threads.ts), and Node's streams, node:v8 and
// node:module with it (src/backends/fork.ts, src/internal/protocol.ts). Against the built library, as a
// consumer's program runs it.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killRuns, lines, runScript, taggedProcesses } from './helpers/spawn-script.ts';

const timeout = 60_000;
const root = fileURLToPath(new URL('..', import.meta.url));
const script = fileURLToPath(new URL('./fixtures/scripts/child-loading.mjs', import.meta.url));
const skip = existsSync(new URL('../dist/index.js', import.meta.url)) ? false : 'dist/ is not built: run `npm run build` (`npm test` does)';

after(killRuns);

interface Results {
  backend: string;
  processTarget: { asyncLoader: boolean; workerThreads: boolean; heavy: string[] };
  commonjsFirst: { value?: boolean; error?: string };
  esm: { value?: { inTask: boolean; asyncLoader: boolean; workerThreads: boolean; heavy: string[] }; error?: string };
  commonjsNamed: { value?: number; error?: string };
  commonjsWhole: { value?: number; error?: string };
  missing: { value?: unknown; error?: string };
  topLevelAwait: { value?: number; error?: string };
  afterAnImport: { value?: boolean; error?: string };
}

async function runLoading(execArgv: string[]): Promise<Results[]> {
  const run = await runScript(script, [], { execArgv, cwd: root });
  assert.equal(run.stderr, '');
  assert.equal(run.code, 0);
  assert.deepEqual(taggedProcesses(run.tag), [], 'a process of the run is still running');
  return lines(run.stdout).map((line) => JSON.parse(line) as Results);
}

/** What loads the same whichever way the child loads it. */
function assertSameModules(results: Results): void {
  assert.equal(results.esm.value?.inTask, true, `${results.backend}: the task module has the child's instance of the library`);
  assert.deepEqual(results.commonjsNamed, { value: 6 });
  assert.deepEqual(results.commonjsWhole, { value: 2 });
  assert.deepEqual(results.missing, { error: 'ERR_MODULE_NOT_FOUND' });
  assert.deepEqual(results.topLevelAwait, { value: 42 });
}

describe('children load modules (the built library)', { skip }, () => {
  it('with require() in plain Node: target and task modules load without the asynchronous module loader (ES modules in a thread with it)', { timeout }, async () => {
    const results = await runLoading([]);
    assert.deepEqual(results.map((r) => r.backend), ['process', 'thread']);
    for (const r of results) {
      assertSameModules(r);
      // A thread imports an ES module: require() of one aborts the process if the thread is terminated as it links.
      const imported = r.backend === 'thread';
      assert.equal(r.processTarget.asyncLoader, imported, `${r.backend}: a Process child's target (an ES module) was ${imported ? 'not ' : ''}imported`);
      assert.equal(r.esm.value?.asyncLoader, imported, `${r.backend}: a pool worker's task module (an ES module) was ${imported ? 'not ' : ''}imported`);
      assert.deepEqual(r.commonjsFirst, { value: false }, `${r.backend}: a pool worker's CommonJS task module was imported`);
      // A child process has no use for node:worker_threads (4 ms to load in a main thread); a worker has it from Node.
      assert.equal(r.processTarget.workerThreads, r.backend === 'thread', `${r.backend}: a Process child loaded node:worker_threads`);
      assert.equal(r.esm.value?.workerThreads, r.backend === 'thread', `${r.backend}: a pool worker loaded node:worker_threads`);
      if (r.backend === 'process') {
        // Nor the modules of an IPC channel, node:v8 (the start message is read through the addon) or node:module.
        assert.deepEqual(r.processTarget.heavy, [], 'a Process child loaded these');
        assert.deepEqual(r.esm.value?.heavy, [], 'a pool worker process loaded these');
      }
      // The control: the marker does tell an import() (a task's own, of a module not loaded before).
      assert.deepEqual(r.afterAnImport, { value: true }, `${r.backend}: an import() left no trace`);
    }
  });

  it('with import() under module hooks (--import tsx), the same modules', { timeout }, async () => {
    const results = await runLoading(['--import', 'tsx']);
    assert.deepEqual(results.map((r) => r.backend), ['process', 'thread']);
    for (const r of results) {
      assertSameModules(r);
      assert.equal(r.processTarget.asyncLoader, true);
      assert.equal(r.esm.value?.asyncLoader, true);
      assert.deepEqual(r.commonjsFirst, { value: true });
    }
  });
});
