// The built dist/ (scripts/build.ts): one module of code, dist/internal/multiproc.js, behind the
// entry files package.json "exports" names, which all share its one instance of every class.
// (The consumer and example tests run programs against dist/ on both backends.)

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript } from './helpers/spawn-script.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const skip = existsSync(join(dist, 'internal/multiproc.js')) ? false : 'dist/ is not built: run `npm run build` (`npm test` does)';
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | { default?: string }> };
const entryNames = Object.keys(manifest.exports).filter((name) => name !== './package.json');

function jsFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.js'))
    .map((entry) => relative(dist, join(entry.parentPath, entry.name)))
    .sort();
}

describe('the built library', { skip }, () => {
  it('is one module of code; every other .js file is an entry that re-exports from it', () => {
    const entries = Object.values(manifest.exports).flatMap((target) => (typeof target === 'object' && target.default ? [target.default.replace('./dist/', '')] : []));
    assert.deepEqual(jsFiles(dist), [...entries, 'bootstrap/child.js', 'internal/multiproc.js'].sort());
    for (const file of jsFiles(dist).filter((file) => file !== 'internal/multiproc.js')) {
      const code = readFileSync(join(dist, file), 'utf8').replace(/^\/\/.*\n/gm, '');
      assert.match(code, /^(export \{[^}]*\} from|import \{ bootChild \} from) '(\.\.\/)*\.?\/?internal\/multiproc\.js';/, `${file} holds code of its own`);
    }
    // The children's entry as a script: it requires the library's loader, which the ES module uses too.
    const script = readFileSync(join(dist, 'bootstrap/child.cjs'), 'utf8').replace(/^\/\/.*\n/gm, '');
    assert.equal(script, "'use strict';\n\nrequire('../internal/library.cjs').exports.bootChild(require.main === module);\n");
    assert.match(readFileSync(join(dist, 'internal/multiproc.js'), 'utf8'), /createRequire\(import\.meta\.url\)\('\.\/library\.cjs'\)/);
  });

  it('gives every entry the same classes, named as exported, in a plain Node without loaders', { timeout: 30_000 }, async () => {
    // Imports each entry by the package's own name, as a consumer does, and compares what two
    // entries both export: the same object, or the library's state would split in two.
    const script = join(root, 'test/fixtures/scripts/entry-identity.mjs');
    const run = await runScript(script, entryNames.map((name) => name.replace(/^\./, 'multiproc')), { execArgv: [], cwd: root });
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    const { shared, differing, misnamed } = JSON.parse(run.stdout) as { shared: number; differing: string[]; misnamed: string[] };
    assert.deepEqual(differing, []);
    assert.deepEqual(misnamed, []);
    assert.ok(shared >= 10, `only ${shared} names are exported by two entries`);
  });

  it("exports at run time every name of the API's module map (a name that is only a type fails to link in JavaScript)", async () => {
    const moduleMap: Record<string, string> = {
      '.': 'Process Queue SimpleQueue JoinableQueue Pipe Lock RLock Semaphore BoundedSemaphore Condition Event Barrier Value SharedArray RawValue RawArray Manager Pool currentProcess parentProcess activeChildren cpuCount getContext setStartMethod getStartMethod getAllStartMethods isMain ProcessError BufferTooShort TimeoutError AuthenticationError RemoteError WorkerLostError Empty Full BrokenBarrierError killTree descendants registerClass partial getLogger logToStderr',
      './connection': 'Connection Listener Client wait',
      './managers': 'BaseManager SyncManager BaseProxy Namespace SharedMemoryManager',
      './shared-memory': 'SharedMemory ShareableList',
      './pool': 'Pool ThreadPool AsyncResult',
      './dummy': 'Process Pool Queue SimpleQueue JoinableQueue Pipe Lock Manager currentProcess',
    };
    const missing: string[] = [];
    for (const [entry, names] of Object.entries(moduleMap)) {
      const target = manifest.exports[entry] as { default: string };
      const exports = (await import(join(root, target.default))) as Record<string, unknown>;
      for (const name of names.split(' ')) if (exports[name] === undefined) missing.push(`${entry.replace(/^\./, 'multiproc')}: ${name}`);
    }
    assert.deepEqual(missing, []);
  });

  it('compiles from its code cache in every thread and child, and without it under other V8 flags', { timeout: 60_000 }, async () => {
    const script = join(root, 'test/fixtures/scripts/code-cache.mjs');
    const withCache = await runScript(script, [], { execArgv: [], cwd: root });
    assert.equal(withCache.stderr, '');
    assert.deepEqual(JSON.parse(withCache.stdout), { main: 'accepted', worker: 'accepted', pools: { process: ['accepted', 49, false], thread: ['accepted', 49, true] } });
    // V8 rejects a cache made under other flags (here --expose-gc, which children inherit); the library then compiles as usual.
    const rejected = await runScript(script, [], { execArgv: ['--expose-gc'], cwd: root });
    assert.equal(rejected.stderr, '');
    assert.deepEqual(JSON.parse(rejected.stdout), { main: 'rejected', worker: 'rejected', pools: { process: ['rejected', 49, false], thread: ['rejected', 49, true] } });
  });

  it('remakes the code cache at `npm install` when dist/ is built, and only warns when it cannot', { timeout: 30_000 }, async () => {
    // A copy of the script in a package without dist/ (a clone before its build), then with a dist/ that throws.
    const dir = mkdtempSync(join(tmpdir(), 'mp-train-'));
    try {
      mkdirSync(join(dir, 'scripts'));
      copyFileSync(join(root, 'scripts/train-code-cache.mjs'), join(dir, 'scripts/train-code-cache.mjs'));
      const script = join(dir, 'scripts/train-code-cache.mjs');
      const unbuilt = await runScript(script, ['--if-built'], { execArgv: [], cwd: dir });
      assert.deepEqual([unbuilt.code, unbuilt.stdout, unbuilt.stderr], [0, '', '']);
      mkdirSync(join(dir, 'dist/internal'), { recursive: true });
      writeFileSync(join(dir, 'dist/internal/multiproc.js'), 'export function writeCodeCache() {}\n');
      writeFileSync(join(dir, 'dist/index.js'), "throw new Error('a broken build');\n");
      const atInstall = await runScript(script, ['--if-built'], { execArgv: [], cwd: dir });
      assert.equal(atInstall.code, 0);
      assert.match(atInstall.stderr, /could not make the code cache \(a broken build\); children will compile the library/);
      const atBuild = await runScript(script, [], { execArgv: [], cwd: dir });
      assert.equal(atBuild.code, 1, 'scripts/build.ts fails on it');
      assert.match(atBuild.stderr, /a broken build/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
