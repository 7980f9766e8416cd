// How a child loads modules: its targets', its pool tasks', the library's own. A child loads them
// with require() where that gives what import() gives, and import() otherwise. Node 20.19+ loads
// an ES module synchronously through require() (require(esm)), while a child's first import()
// starts Node's asynchronous module loader: 8-10 ms of a pool worker's start, a third of what
// the library adds to Node's own (piscina's workers require() their task file first for the same
// reason). Both share one module cache: a module loaded either way is the same instance.
//
// import() stays for what require() cannot load, might load differently, or must not load:
//   - a module with a top-level await (ERR_REQUIRE_ASYNC_MODULE), or one already being imported;
//   - anything but a .js/.mjs/.cjs file named by a file: URL or an absolute path (.ts through a
//     loader, data: URLs, package names);
//   - a missing module, so that its error is import()'s (ERR_MODULE_NOT_FOUND);
//   - every module of a process run with module customization flags (--import, --loader,
//     --require: tsx, instrumentation): their hooks may not apply to require() on Node 20;
//   - the main process: its program may register hooks at run time (module.register()).
//   - in a worker thread, anything but a .cjs file: a thread terminated (Pool.terminate(), a task's
//     timeout, Process.terminate(), the program's exit) while require() links an ES module aborts
//     the whole process on Node 20 (FATAL ERROR in v8::Module::IsGraphAsync, or a failed assertion
//     in CreateRequiredModuleFacade; piscina's workers hit it too; about 1 in 1,600 terminations
//     of a starting Pool here). import() checks for the termination. A .js file may be an ES
//     module, and only reading its package.json would tell.

import { extname, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { dynamicImport, libraryRequire } from './module-loaders.ts';
import { runtime } from './runtime.ts';

const requirable = new Set(['.js', '.mjs', '.cjs']);
const requirableInThread = new Set(['.cjs']);
// Errors after which import() may still load the module (nothing of it has run).
const importMayLoad = new Set(['ERR_REQUIRE_ASYNC_MODULE', 'ERR_REQUIRE_ESM', 'ERR_REQUIRE_CYCLE_MODULE', 'MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND']);

/** Whether this process's modules may be loaded with require(): require(esm) is on and no loader flag is set. */
export const requireLoadsModules: boolean =
  process.features.require_module === true &&
  ![...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)].some((flag) => /^(--import|--loader|--experimental-loader|--require|-r)(=|$)/.test(flag));

/** The built library's own exports: the library's targets (a pool worker's) are looked up there. */
let libraryExports: Record<string, unknown> | undefined;

/**
 * Called by the built library with its exports (scripts/build.ts). A reference to the library's
 * own module (`import.meta.url` here, in the one-module build) then needs no module loaded: a
 * child that never imports `multiproc` itself never loads its ES module wrapper.
 */
export function libraryLoaded(exports: Record<string, unknown>): Record<string, unknown> {
  libraryExports = exports;
  return exports;
}

/** The module's namespace, as import(specifier) gives it (a CommonJS module's exports as `default`). */
export function importModule(specifier: string): Promise<Record<string, unknown>> {
  if (libraryExports !== undefined && specifier === import.meta.url) return Promise.resolve(libraryExports);
  const { role } = runtime();
  const path = requireLoadsModules && role !== 'main' ? requirablePath(specifier, role === 'thread-child' ? requirableInThread : requirable) : undefined;
  if (path !== undefined) {
    try {
      const loaded: unknown = libraryRequire()(path);
      return Promise.resolve(types.isModuleNamespaceObject(loaded) ? (loaded as Record<string, unknown>) : { default: loaded });
    } catch (error) {
      if (!importMayLoad.has((error as { code?: string } | null)?.code ?? '')) return Promise.reject(error);
    }
  }
  return dynamicImport(specifier);
}

function requirablePath(specifier: string, extensions: ReadonlySet<string>): string | undefined {
  const path = specifier.startsWith('file:') ? fileURLToPath(specifier) : isAbsolute(specifier) ? specifier : undefined;
  return path !== undefined && extensions.has(extname(path)) ? path : undefined;
}
