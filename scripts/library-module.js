// The library as one ES module, dist/internal/multiproc.js: its code is loaded by
// dist/internal/library.cjs (scripts/library-loader.cjs says how and why). scripts/build.ts writes
// this file: this template, then the exports.

// In a child, library.cjs is loaded already (its bootstrap requires it), and has left its exports
// where this module finds them: an ES module has no require() of its own, and making one loads
// node:module, about 1.5 ms of a child's start. Elsewhere, this module loads library.cjs itself.
const loaded = Symbol.for(`multiproc.library ${process.getBuiltinModule('node:url').fileURLToPath(new URL('./library.cjs', import.meta.url))}`);
const library = globalThis[loaded] ?? process.getBuiltinModule('node:module').createRequire(import.meta.url)('./library.cjs');

/** Whether this thread compiled the library from the code cache: 'accepted', 'rejected' or 'missing'. */
export const codeCache = library.codeCache;

/** Whether this worker thread had the library's script and code cache from the thread that started it. */
export const filesHanded = library.filesHanded;

/** Writes what this thread has compiled of the library as the code cache (scripts/train-code-cache.mjs). */
export const writeCodeCache = library.writeCodeCache;

