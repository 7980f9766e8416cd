// npm run build: dist/ from src/. The types come from tsc (declarations only); the code is one
// module, dist/internal/multiproc.js, bundled by esbuild, behind small entry files at the paths
// package.json "exports" names (dist/index.js, dist/pool/index.js, ...) that re-export from it.
// That module takes its exports from dist/internal/library.cjs, which runs the bundle as a script
// compiled with V8's code cache (scripts/library-loader.cjs says why), which
// scripts/train-code-cache.mjs makes here. Children require library.cjs directly.
//
// Why one module: Node 20 loads each ES module file separately (resolve, read, compile, link), and
// a child loads the library before it runs its target. As one file the whole library loads in
// about 19 ms in a fresh worker thread, against 48 ms as its ~50 files, and 27 ms for the 20 a
// pool worker needed (of which 8 are Node's module loader starting up, whatever is loaded); with
// the code cache, in 11-13 ms.
// Why entry files that re-export, and not one bundle per entry: every entry, and every child's
// bootstrap, must share the one instance of each class and of the library's state.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { build, type BuildOptions, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const bundle = join(dist, 'internal/multiproc.js');
const script = join(dist, 'internal/multiproc.cjs');
const loader = join(dist, 'internal/library.cjs');

/** The library's own process targets, exported from the bundle under their own names (see poolWorkerTarget). */
const targets: Record<string, string[]> = {
  'src/pool/worker-loop.ts': ['poolWorker'],
  'src/managers/server.ts': ['runManagerServer'],
};
/**
 * The child bootstrap: entry scripts (they run bootChild), not modules to re-export. The CommonJS
 * one requires the library, so that a child does not start Node's asynchronous module loader for
 * it; the ES module one imports it, for processes run with module hooks (see bootstrapUrl() in
 * src/bootstrap/location.ts and src/internal/import-module.ts).
 */
const bootstrap = { entries: { module: 'bootstrap/child.js', script: 'bootstrap/child.cjs' }, module: 'src/bootstrap/boot.ts', name: 'bootChild' };

// The script has no module loader for import(): the library's one import() (src/internal/module-loaders.ts)
// calls the importer that dist/internal/library.cjs, which runs the script, passes in, and its
// require() is that file's own (no createRequire(), no node:module to load).
const importThroughModule: Plugin = {
  name: 'import-through-module',
  setup(plugin) {
    plugin.onLoad({ filter: /[\\/]src[\\/]internal[\\/]module-loaders\.ts$/ }, () => ({
      contents: 'export function dynamicImport(specifier) { return __multiprocImport(specifier); }\nexport function libraryRequire() { return require; }',
      loader: 'js',
    }));
  },
};

const common: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external', // cli-progress stays an import
  logLevel: 'warning',
};

rmSync(dist, { recursive: true, force: true });
typeDeclarations();
const entries = publicEntries();
const exportsOf = await exportNames(entries.map((entry) => entry.source));
const aliases = new Map(entries.map((entry) => [entry.source, bundleNames(entry.source, exportsOf.get(entry.source) ?? [])]));
await bundleLibrary();
for (const entry of entries) writeEntry(entry.output, reexports(entry.output, aliases.get(entry.source) ?? []));
const { module: moduleEntry, script: scriptEntry } = bootstrap.entries;
writeEntry(moduleEntry, `import { ${bootstrap.name} } from '${specifier(moduleEntry)}';\n\nawait ${bootstrap.name}();\n`);
// As a process's main script it is the main module; a worker thread requires it (see bootChild).
writeEntry(scriptEntry, `'use strict';\n\nrequire('${relative(dirname(join(dist, scriptEntry)), loader)}').exports.${bootstrap.name}(require.main === module);\n`);
trainCodeCache();

function typeDeclarations(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
}

/** package.json "exports": each entry's output (dist/x.js) and its source (src/x.ts). */
function publicEntries(): { output: string; source: string }[] {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | { default?: string }> };
  const outputs = Object.values(manifest.exports).flatMap((target) => (typeof target === 'object' && target.default ? [target.default] : []));
  return outputs.map((output) => {
    const path = output.replace(/^\.\/dist\//, '');
    return { output: path, source: `src/${path.replace(/\.js$/, '.ts')}` };
  });
}

/** The names each source module exports, as esbuild sees them (types excluded). */
async function exportNames(sources: string[]): Promise<Map<string, string[]>> {
  const result = await build({ ...common, entryPoints: sources.map((source) => join(root, source)), outdir: join(root, 'dist'), splitting: true, write: false, metafile: true });
  const names = new Map<string, string[]>();
  for (const output of Object.values(result.metafile.outputs)) {
    if (output.entryPoint) names.set(output.entryPoint, output.exports);
  }
  return names;
}

/** Export name → the name it has in the bundle: `<entry>$<name>`, since two entries may export one name differently. */
function bundleNames(source: string, names: string[]): [name: string, alias: string][] {
  const prefix = source.replace(/^src\//, '').replace(/\.ts$/, '').replace(/[^\w]/g, '_');
  return names.map((name) => [name, `${prefix}$${name}`]);
}

async function bundleLibrary(): Promise<void> {
  const exported: [source: string, names: [name: string, alias: string][]][] = [
    ...aliases,
    ...Object.entries(targets).map(([source, names]): [string, [string, string][]] => [source, names.map((name) => [name, name])]),
    [bootstrap.module, [[bootstrap.name, bootstrap.name]]],
  ];
  // Imports, then one call that hands the values over (see scripts/library-loader.cjs): no exports,
  // which esbuild would make a getter each.
  const lines = exported.map(([source, names]) => importList(source, names));
  const names = exported.flatMap(([, pairs]) => pairs.map(([, alias]) => alias));
  lines.push(`import { libraryLoaded } from './src/internal/import-module.ts';`, `__multiprocExports(libraryLoaded({ ${names.join(', ')} }));`);
  await build({
    ...common,
    format: 'cjs', // Node's modules by require(): no ES facade reads every export of node:fs (and loads the streams)
    stdin: { contents: lines.join('\n'), resolveDir: root, sourcefile: 'multiproc.ts', loader: 'ts' },
    outfile: script,
    sourcemap: true,
    define: { 'import.meta.url': '__multiprocUrl' },
    plugins: [importThroughModule],
  });
  const code = namedClasses(readFileSync(script, 'utf8'));
  writeFileSync(script, code);
  checkScript(code);
  const cacheFile = `multiproc.${createHash('sha256').update(code).digest('hex').slice(0, 16)}.cache`;
  writeFileSync(loader, readFileSync(join(root, 'scripts/library-loader.cjs'), 'utf8').replace('CODE_CACHE_FILE', cacheFile));
  const template = readFileSync(join(root, 'scripts/library-module.js'), 'utf8');
  writeFileSync(bundle, `${template}export const { ${names.join(', ')} } = library.exports;\n`);
}

// What would break the script only when it runs, caught here.
function checkScript(code: string): void {
  selfExtendingClass(code);
  // It has no module loader: an import() in it throws ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING (the
  // two in src/backends/thread.ts are in a worker's source text, as `import(${...})`).
  const stray = /\bimport\((?!\$\{)/.exec(code);
  if (stray) fail(`the bundle calls import() (${code.slice(stray.index - 60, stray.index + 40).replace(/\s+/g, ' ')}): call importModule() from src/internal/import-module.ts instead (its fallback is the one import()).`);
  // esbuild escapes every non-ASCII character by default (charset: 'ascii'); library-loader.cjs reads the script as latin1.
  if (/[^\x00-\x7f]/.test(code)) fail("dist/internal/multiproc.cjs holds a non-ASCII character, which library-loader.cjs would misread as latin1: keep esbuild's default charset (ascii).");
}

function fail(message: string): never {
  console.error(`scripts/build.ts: ${message}`);
  process.exit(1);
}

// The code cache is made by the built library itself, in a pool worker thread: the build fails
// when the library cannot start a pool.
function trainCodeCache(): void {
  const { NODE_OPTIONS: _options, ...env } = process.env;
  const run = spawnSync(process.execPath, [join(root, 'scripts/train-code-cache.mjs')], { stdio: 'inherit', env, cwd: root });
  if (run.status !== 0) fail(`scripts/train-code-cache.mjs failed (${run.signal ?? `exit code ${run.status}`}): the built library could not run a pool task; see its output above.`);
}

// esbuild bundles a class that refers to itself as `var Queue = class _Queue {`, so Queue.name is
// '_Queue' (in messages built from new.target.name, in inspect()). Its keepNames option fixes that
// by wrapping every function, closures made per call included (a fifth of a tiny pool task's time
// went to its __name helper). Instead, each such class gets back its own name as it is defined.
function namedClasses(code: string): string {
  return code.replace(/^(var (\w+) = class _\2\b[^{\n]*\{)$/gm, '$1 static { Object.defineProperty(this, "name", { value: "$2" }); }');
}

// esbuild 0.28 bundles `class Pool extends BasePool` (BasePool: the imported Pool) inside a
// function as `class Pool extends Pool`, a ReferenceError when it runs; src/context.ts avoids the
// pattern, and this check keeps it from coming back unnoticed.
function selfExtendingClass(code: string): void {
  const found = /class (\w+) extends \1\b/.exec(code);
  if (found) fail(`the bundle has "${found[0]}", which throws when it runs. Give that class expression another name than the class it extends (see src/context.ts).`);
}

function importList(source: string, names: [name: string, alias: string][]): string {
  return `import { ${names.map(([name, alias]) => (name === alias ? name : `${name} as ${alias}`)).join(', ')} } from './${source}';`;
}

function reexports(output: string, names: [name: string, alias: string][]): string {
  return `export { ${names.map(([name, alias]) => `${alias} as ${name}`).join(', ')} } from '${specifier(output)}';\n`;
}

/** The bundle's path relative to a file at `output` in dist/. */
function specifier(output: string): string {
  const path = relative(dirname(join(dist, output)), bundle);
  return path.startsWith('.') ? path : `./${path}`;
}

function writeEntry(output: string, text: string): void {
  const path = join(dist, output);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `// Built by scripts/build.ts: the library is dist/internal/multiproc.js.\n${text}`);
}
