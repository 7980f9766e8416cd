// The library's own two ways of loading a module: import(), and a require() that resolves as from
// the library's module. The built library runs as a script compiled with V8's code cache
// (scripts/build.ts), where import() has no module loader to call: the build replaces this module
// with one that calls the importer and the require() of dist/internal/library.cjs, which runs the
// script and passes them in. From src/, require() is made by createRequire() at its first use: to
// load node:module and make one costs a fresh process about 2 ms, before a child's first task.

/** import(specifier), from the library's own code. */
export function dynamicImport(specifier: string): Promise<Record<string, unknown>> {
  return import(specifier) as Promise<Record<string, unknown>>;
}

let made: NodeJS.Require | undefined;

/** require(), resolving as from the library's own module: a file by absolute path, a package it depends on. */
export function libraryRequire(): NodeJS.Require {
  return (made ??= process.getBuiltinModule('node:module').createRequire(import.meta.url));
}
