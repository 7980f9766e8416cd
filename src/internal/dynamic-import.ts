// The library's one dynamic import(). The built library runs as a script compiled with V8's code
// cache (scripts/build.ts), where import() has no module loader to call: the build replaces this
// module with the importer that dist/internal/library.cjs, which runs the script, passes in.

/** import(specifier), from the library's own code. */
export function dynamicImport(specifier: string): Promise<Record<string, unknown>> {
  return import(specifier) as Promise<Record<string, unknown>>;
}
