// The library as one ES module, dist/internal/multiproc.js, whose code is the script beside it,
// multiproc.cjs, compiled with V8's code cache. scripts/build.ts writes this file: this template,
// then the exports.
//
// Why a script: every child (a forked process, a worker thread) compiles the library before it
// runs its target, and Node 20 keeps no compiled code for ES modules. A script can be compiled
// from V8's code cache, made at build time in a pool worker after its first task
// (scripts/train-code-cache.mjs, again at `npm install`): a new worker then neither parses the
// library nor compiles the functions a child runs first, about 10 ms of its start. Without the
// cache file, or when V8 rejects it (another Node version, other V8 flags), V8 compiles as usual.

const { readFileSync, renameSync, writeFileSync } = process.getBuiltinModule('node:fs');
const { Script } = process.getBuiltinModule('node:vm');
const { createRequire } = process.getBuiltinModule('node:module');
const { fileURLToPath } = process.getBuiltinModule('node:url');

const scriptPath = fileURLToPath(new URL('./multiproc.cjs', import.meta.url));
// Named after a hash of the script: a cache of other code is never used for it.
const cachePath = fileURLToPath(new URL('./CODE_CACHE_FILE', import.meta.url));
const cachedData = readCodeCache();
// The wrapper stays on the script's first line, so that stack traces give its line numbers. The
// script is ASCII (the build checks): read as latin1, it becomes a string without UTF-8 decoding.
// The script ends by handing over its exports, as plain values: esbuild's CommonJS exports are a
// getter per name, about 2 ms of a worker's start for the library's ~100 names.
const wrapper = `(function (require, __multiprocUrl, __multiprocImport, __multiprocExports) {"use strict";${readFileSync(scriptPath, 'latin1')}\n})`;
const script = new Script(wrapper, { filename: scriptPath, cachedData });
const library = { exports: {} };
script.runInThisContext()(createRequire(import.meta.url), import.meta.url, (specifier) => import(specifier), (exports) => {
  library.exports = exports;
});

function readCodeCache() {
  try {
    return readFileSync(cachePath);
  } catch {
    return undefined;
  }
}

/** Whether this thread compiled the library from the code cache: 'accepted', 'rejected' or 'missing'. */
export const codeCache = cachedData === undefined ? 'missing' : script.cachedDataRejected ? 'rejected' : 'accepted';

/** Writes what this thread has compiled of the library as the code cache (scripts/train-code-cache.mjs). */
export function writeCodeCache() {
  // Whole or not at all, for a child starting meanwhile (renamed into place).
  const partial = `${cachePath}.${process.pid}.partial`;
  writeFileSync(partial, script.createCachedData());
  renameSync(partial, cachePath);
}

