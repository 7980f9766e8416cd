// The main guard, isMain(import.meta): true only in the entry module of the main process. Without
// it, a child that imports the entry module to find its target refuses to start processes while
// it imports (Python's bootstrapping RuntimeError), so a forgotten guard cannot fork-bomb. And the
// start method: set once, and the context API's small facts.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from './helpers/backends.ts';
import { allGone, isNode, isRunning, killStrays } from './helpers/processes.ts';
import { killRuns, lines, runScript, taggedProcesses } from './helpers/spawn-script.ts';
import { ProcessError, cpuCount, descendants, getAllStartMethods, getContext, isMain } from '../src/index.ts';
import * as errors from '../src/errors.ts';
import * as root from '../src/index.ts';

const timeout = 25_000;
const scripts = new URL('./fixtures/scripts/', import.meta.url);
const script = (name: string): string => fileURLToPath(new URL(name, scripts));
const temporary: string[] = [];

after(async () => {
  killRuns();
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
  // Node processes only (tsx's esbuild service is a child of this process too, and stays), given a
  // moment to finish exiting; whatever still runs then is a stray, killed, and reported.
  const strays = descendants(process.pid).filter(isNode);
  const stillRunning = (await allGone(strays, 2000)) ? [] : strays.filter(isRunning);
  killStrays();
  assert.deepEqual(stillRunning, [], 'a child of this test file is still running');
});

/** What is-main-entry.ts prints, in any order (its children run concurrently). */
const isMainLines = [
  'imported top-level in MainProcess: isMain=false',
  'entry top-level in MainProcess: isMain=true',
  // Process-1 runs entryTarget: it imports the entry module (and so the imported one) again.
  'imported top-level in Process-1: isMain=false',
  'entry top-level in Process-1: isMain=false',
  'entryTarget in Process-1 (process): isMain=false',
  // Process-2 runs importedTarget: it imports only the module that defines it.
  'imported top-level in Process-2: isMain=false',
  'importedTarget in Process-2 (process): isMain=false',
  'process exit codes 0,0',
  // The same in worker threads, which see the main process's process.argv.
  'imported top-level in Process-3: isMain=false',
  'entry top-level in Process-3: isMain=false',
  'entryTarget in Process-3 (thread): isMain=false',
  'imported top-level in Process-4: isMain=false',
  'importedTarget in Process-4 (thread): isMain=false',
  'thread exit codes 0,0',
];

describe('isMain()', () => {
  it('is true in the entry script, false in a module it imports, in a child process and in a worker thread', { timeout }, async () => {
    const run = await runScript(script('is-main-entry.ts'));
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    assert.deepEqual(lines(run.stdout).sort(), [...isMainLines].sort());
    assert.deepEqual(taggedProcesses(run.tag), []);
  });

  it('is true in an entry script run through a symlink (Node runs the real file)', { timeout }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-main-guard-'));
    temporary.push(dir);
    const link = join(dir, 'linked-entry.ts');
    symlinkSync(script('is-main-entry.ts'), link);
    const run = await runScript(link, ['entry-only'], { cwd: fileURLToPath(new URL('..', import.meta.url)) });
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    assert.deepEqual(lines(run.stdout), isMainLines.slice(0, 2));
  });

  it('is true in the entry of a program run as its directory (`node .`: package.json "main", else index)', { timeout }, async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    for (const layout of ['main', 'index'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'mp-main-guard-'));
      temporary.push(dir);
      if (layout === 'main') {
        mkdirSync(join(dir, 'bin'));
        symlinkSync(script('is-main-entry.ts'), join(dir, 'bin', 'app.ts'));
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', main: 'bin/app.ts' }));
      } else {
        symlinkSync(script('is-main-entry.ts'), join(dir, 'index.ts'));
      }
      const run = await runScript(dir, ['entry-only'], { cwd: root });
      assert.equal(run.stderr, '', layout);
      assert.equal(run.code, 0, layout);
      assert.deepEqual(lines(run.stdout), isMainLines.slice(0, 2), layout);
    }
  });

  it('is false for a module that is not the entry, given as import.meta, a module object, a URL or a path', () => {
    const elsewhere = new URL('./fixtures/targets.ts', import.meta.url);
    assert.equal(isMain({ url: elsewhere.href }), false);
    assert.equal(isMain({ filename: fileURLToPath(elsewhere) }), false);
    assert.equal(isMain(elsewhere.href), false);
    assert.equal(isMain(fileURLToPath(elsewhere)), false);
  });

  it('throws a TypeError that says to call it as isMain(import.meta) when given something else', () => {
    for (const wrong of [undefined, null, 42, {}, { url: 42 }]) {
      assert.throws(() => isMain(wrong as never), (error: NodeJS.ErrnoException) => {
        assert.ok(error instanceof TypeError);
        assert.equal(error.code, 'ERR_MP_INVALID_ARGUMENT');
        assert.match(error.message, /^isMain\(\): expected import\.meta \(ES modules\) or module \(CommonJS\), got .*\. Call it as isMain\(import\.meta\)\.$/);
        return true;
      });
    }
  });
});

forEachBackend((_ctx, backend) => {
  describe('a script that forgets the main guard', () => {
    it('its child refuses to start a grandchild with ERR_MP_BOOTSTRAPPING and exits 1; the script ends and nothing is left', { timeout }, async () => {
      const run = await runScript(script('no-main-guard.ts'), [], { env: { MP_GUARD_BACKEND: backend } });
      assert.equal(run.code, 0, run.stderr);
      const out = lines(run.stdout);
      assert.ok(!out.some((line) => line.startsWith('FORK BOMB')), run.stdout);
      // The top level ran twice: in the script, and in the child that imported it. Never deeper.
      assert.deepEqual(out.filter((line) => line.startsWith('top-level in ')).map((line) => line.replace(/ \(pid \d+\)$/, '')), [
        'top-level in MainProcess',
        'top-level in Process-1',
      ]);
      assert.ok(!out.some((line) => line.startsWith('work ran')), 'the target must not run: importing its module failed');
      assert.deepEqual(out.at(-1), 'MainProcess: child exitCode=1');
      // The child's report on stderr: its name, the ProcessError with its code, and the fix.
      assert.match(run.stderr, /^Process Process-1:\nProcessError: Process\.start\(\): a new process was started while process \d+ \(Process-1\) was still importing its target's module\./);
      assert.match(run.stderr, /if \(isMain\(import\.meta\)\) \{/);
      assert.match(run.stderr, /code: 'ERR_MP_BOOTSTRAPPING'/);
      assert.equal(run.stderr.match(/^Process /gm)?.length, 1, 'exactly one child failed');
      assert.deepEqual(taggedProcesses(run.tag), [], 'a process of the run is still running');
    });
  });

  describe('a script that forgets the main guard around an async main() it does not await', () => {
    it('its child starts no grandchild either', { timeout }, async () => {
      const run = await runScript(script('no-main-guard-async.ts'), [], { env: { MP_GUARD_BACKEND: backend } });
      assert.deepEqual(taggedProcesses(run.tag), [], 'a process of the run is still running');
      const out = lines(run.stdout);
      assert.ok(!out.some((line) => line.startsWith('FORK BOMB')), run.stdout);
      assert.ok(!out.some((line) => line.includes('Process-1:1')), `a grandchild was started:\n${run.stdout}`);
    });
  });
});

describe('the import guard, once the import is done (the built library, plain Node)', () => {
  // Its hooks cost every promise of the child (Queue.put() 2.5 us instead of 0.8): a target whose
  // import left nothing of its own pending must start with them off, even if it never yields to
  // the event loop (the module loader's file closes end a turn later and do not count). Through
  // tsx, the loader's hooks thread leaves message ports pending for a while: not checked there.
  const built = existsSync(fileURLToPath(new URL('../dist/index.js', import.meta.url)));
  it('is off when the target starts, for a module that imports nothing and one with a top-level await, on both backends', { timeout, skip: built ? false : 'dist/ is not built' }, async () => {
    const run = await runScript(script('import-guard-off.mjs'), [], { execArgv: [], cwd: fileURLToPath(new URL('..', import.meta.url)) });
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    assert.deepEqual(lines(run.stdout), [
      'process plain-target.mjs: watched=false',
      'process awaiting-target.mjs: watched=false',
      'thread plain-target.mjs: watched=false',
      'thread awaiting-target.mjs: watched=false',
    ]);
    assert.deepEqual(taggedProcesses(run.tag), [], 'a process of the run is still running');
  });
});

describe('a main program given as `node -e <code>` (the built library, plain Node)', () => {
  // A child gets the parent's execArgv as fork() passes it: without the code, which would run
  // again in the child (and start a child of its own) instead of the bootstrap.
  const built = existsSync(fileURLToPath(new URL('../dist/index.js', import.meta.url)));
  const library = new URL('../dist/index.js', import.meta.url).href;
  const target = new URL('eval-target.mjs', scripts).href;
  const program = (label: string) => `
    if (process.env.MP_EVAL_RAN) { console.log('the code ran again in a child'); process.exit(1); }
    process.env.MP_EVAL_RAN = '1';
    const { Process } = await import('${library}');
    const child = new Process({ target: { module: '${target}', name: 'report' }, args: ['${label}'] });
    child.start();
    await child.join();
    console.log('exit ' + child.exitCode);`;
  for (const [label, execArgv, file] of [
    ['-e', ['--input-type=module', '-e'], program('-e')],
    ['--eval=', ['--input-type=module'], `--eval=${program('--eval=')}`],
  ] as const) {
    it(`its Process child runs the target, not the code (${label})`, { timeout, skip: built ? false : 'dist/ is not built' }, async () => {
      const run = await runScript(file, [], { execArgv: [...execArgv] });
      assert.equal(run.stderr, '');
      assert.deepEqual(lines(run.stdout), [`target ran: ${label}`, 'exit 0']);
      assert.equal(run.code, 0);
    });
  }
});

describe('setStartMethod()', () => {
  it('sets the start method once; a second call throws ERR_MP_CONTEXT_ALREADY_SET unless { force: true }', { timeout }, async () => {
    const run = await runScript(script('start-method.ts'), ['set-twice']);
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    const results = JSON.parse(run.stdout) as Record<string, Record<string, unknown>>;
    assert.deepEqual(results.first, { returned: null });
    assert.equal(results.afterFirst, 'thread');
    assert.equal(results.second?.threw, 'ProcessError');
    assert.equal(results.second?.isProcessError, true);
    assert.equal(results.second?.code, 'ERR_MP_CONTEXT_ALREADY_SET');
    assert.match(String(results.second?.message), /^setStartMethod\(\): the start method is already 'thread' in process \d+\. .*\{ force: true \}.*getContext\('process'\)/);
    assert.equal(results.afterSecond, 'thread', 'a refused call changes nothing');
    assert.deepEqual(results.forced, { returned: null });
    assert.equal(results.afterForced, 'process');
    assert.equal(results.bogus?.threw, 'TypeError');
    assert.equal(results.bogus?.code, 'ERR_MP_UNKNOWN_START_METHOD');
    assert.equal(results.defaultProcessRanOn, 'thread', 'the default Process follows the start method');
    assert.equal(results.exitCode, 0);
  });

  it('getStartMethod() fixes the start method, as in Python: a later setStartMethod() throws', { timeout }, async () => {
    const run = await runScript(script('start-method.ts'), ['read-first']);
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    const results = JSON.parse(run.stdout) as Record<string, Record<string, unknown>>;
    assert.equal(results.allowNone, null, "getStartMethod(true) is null while none is set (Python's allow_none)");
    assert.equal(results.read, 'process');
    assert.equal(results.setAfterRead?.code, 'ERR_MP_CONTEXT_ALREADY_SET');
    assert.equal(results.setAfterRead?.isProcessError, true);
  });
});

describe('contexts', () => {
  it("getAllStartMethods() is ['process', 'thread']", () => {
    assert.deepEqual(getAllStartMethods(), ['process', 'thread']);
  });

  it('getContext() of an unknown method throws a TypeError naming the valid ones', () => {
    assert.throws(() => getContext('bogus' as never), (error: NodeJS.ErrnoException) => {
      assert.ok(error instanceof TypeError);
      assert.ok(!(error instanceof ProcessError));
      assert.equal(error.code, 'ERR_MP_UNKNOWN_START_METHOD');
      assert.equal(error.message, `getContext(): expected a start method of 'process' or 'thread', got "bogus" (string).`);
      return true;
    });
    assert.throws(() => getContext('spawn' as never), { code: 'ERR_MP_UNKNOWN_START_METHOD', message: /got "spawn" \(string\)\. Python's 'spawn' is 'process' here/ });
  });

  it('getContext(method) is one context per method, whose getStartMethod() names it', () => {
    assert.equal(getContext('thread'), getContext('thread'));
    assert.notEqual(getContext('thread'), getContext('process'));
    assert.equal(getContext('thread').getStartMethod(), 'thread');
    assert.equal(getContext('process').getStartMethod(), 'process');
  });

  it("a context has the library's error classes, as Python's has ctx.TimeoutError: the same classes", () => {
    for (const ctx of [getContext(), getContext('thread'), getContext('process')]) {
      for (const name of ['ProcessError', 'BufferTooShort', 'TimeoutError', 'AuthenticationError', 'RemoteError', 'WorkerLostError', 'Empty', 'Full', 'BrokenBarrierError'] as const) {
        assert.equal(ctx[name], errors[name], name);
      }
    }
  });

  it('a context carries every name of the root module (API.md), the same objects but Process and Pool (its own) and getStartMethod', () => {
    const own = new Set(['Process', 'Pool', 'getStartMethod', 'Manager']);
    const rootOnly = new Set(['Context']); // the class of contexts itself
    for (const ctx of [getContext(), getContext('thread')]) {
      for (const [name, value] of Object.entries(root)) {
        if (rootOnly.has(name)) continue;
        assert.ok(name in ctx, `ctx.${name} is missing`);
        if (!own.has(name)) assert.equal((ctx as unknown as Record<string, unknown>)[name], value, `ctx.${name} is not the root's`);
      }
    }
    assert.equal(getContext('thread').getLogger(), root.getLogger());
  });

  it('cpuCount() is a positive integer', () => {
    const count = cpuCount();
    assert.ok(Number.isInteger(count) && count >= 1, `cpuCount() = ${count}`);
  });
});
