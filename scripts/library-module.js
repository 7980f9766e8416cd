// The library as one ES module, dist/internal/multiproc.js: its code is loaded by
// dist/internal/library.cjs (scripts/library-loader.cjs says how and why). scripts/build.ts writes
// this file: this template, then the exports.

const library = process.getBuiltinModule('node:module').createRequire(import.meta.url)('./library.cjs');

/** Whether this thread compiled the library from the code cache: 'accepted', 'rejected' or 'missing'. */
export const codeCache = library.codeCache;

/** Writes what this thread has compiled of the library as the code cache (scripts/train-code-cache.mjs). */
export const writeCodeCache = library.writeCodeCache;

