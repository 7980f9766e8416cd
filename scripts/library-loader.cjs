// The library's code, loaded once per thread: dist/internal/library.cjs, written by scripts/build.ts
// from this template. Its code is the script beside it, multiproc.cjs, compiled with V8's code
// cache. dist/internal/multiproc.js (the ES module that the package's entries re-export) takes
// its exports from here, and so does the child bootstrap, dist/bootstrap/child.cjs, which
// requires this file directly: CommonJS modules are cached per thread, so both get the one
// instance, and a child that never imports `multiproc` itself never loads an ES module for it
// (1-3 ms of its start, more in a process than in a worker thread).
//
// Why a script: every child (a forked process, a worker thread) compiles the library before it
// runs its target, and Node 20 keeps no compiled code for ES modules. A script can be compiled
// from V8's code cache, made at build time in a pool worker after its first task
// (scripts/train-code-cache.mjs, again at `npm install`): a new worker then neither parses the
// library nor compiles the functions a child runs first, about 10 ms of its start. Without the
// cache file, or when V8 rejects it (another Node version, other V8 flags), V8 compiles as usual.

'use strict';

const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { Script } = require('node:vm');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const scriptPath = join(__dirname, 'multiproc.cjs');
// Named after a hash of the script: a cache of other code is never used for it.
const cachePath = join(__dirname, 'CODE_CACHE_FILE');
// A worker thread that this library started has the script and its cache from the thread that
// started it, in shared memory (see sharedFiles()): reading the two files took 3 ms of a worker's
// start, the copy out of shared memory takes 1.
const handed = takeHandedFiles();
const cachedData = handed ? handed.cache ?? undefined : readCodeCache();
// The wrapper stays on the script's first line, so that stack traces give its line numbers. The
// script is ASCII (the build checks): read as latin1, it becomes a string without UTF-8 decoding.
const source = handed ? Buffer.from(handed.script).toString('latin1') : readFileSync(scriptPath, 'latin1');
const wrapper = `(function (require, __multiprocUrl, __multiprocImport, __multiprocExports) {"use strict";${source}\n})`;
const script = new Script(wrapper, { filename: scriptPath, cachedData });
// The script runs as the ES module dist/internal/multiproc.js would: that is its import.meta.url.
// It ends by handing its exports over as plain values: esbuild's CommonJS exports are a getter per
// name, about 2 ms of a worker's start for the library's ~100 names.
script.runInThisContext()(require, pathToFileURL(join(__dirname, 'multiproc.js')).href, (specifier) => import(specifier), (exports) => {
  module.exports.exports = exports;
});

function readCodeCache() {
  try {
    return readFileSync(cachePath);
  } catch {
    return undefined;
  }
}

// What backends/thread.ts handed this worker thread (its bootstrap sets the global), if it is this
// library's: another installed copy's script is not this one.
function takeHandedFiles() {
  const key = Symbol.for('multiproc.library files');
  const files = globalThis[key];
  delete globalThis[key];
  return files && files.script instanceof SharedArrayBuffer && files.path === scriptPath ? files : undefined;
}

function sharedCopy(bytes) {
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  return shared;
}

let shared;

/** The script and its code cache (null when there is none) in shared memory, for the worker threads this thread starts. */
module.exports.sharedFiles = function sharedFiles() {
  if (shared === undefined) {
    const cache = readCodeCache();
    shared = { path: scriptPath, script: sharedCopy(readFileSync(scriptPath)), cache: cache ? Buffer.from(sharedCopy(cache)) : null };
  }
  return shared;
};

/** Whether this worker thread had the script and its code cache from the thread that started it. */
module.exports.filesHanded = handed !== undefined;

/** Whether this thread compiled the library from the code cache: 'accepted', 'rejected' or 'missing'. */
module.exports.codeCache = cachedData === undefined ? 'missing' : script.cachedDataRejected ? 'rejected' : 'accepted';

/** Writes what this thread has compiled of the library as the code cache (scripts/train-code-cache.mjs). */
module.exports.writeCodeCache = function writeCodeCache() {
  // Whole or not at all, for a child starting meanwhile (renamed into place).
  const partial = `${cachePath}.${process.pid}.partial`;
  writeFileSync(partial, script.createCachedData());
  renameSync(partial, cachePath);
};

// For dist/internal/multiproc.js, which would otherwise need a require() of its own (see there).
// One key per copy of the library: two installed copies in one program stay apart.
globalThis[Symbol.for(`multiproc.library ${__filename}`)] = module.exports;
