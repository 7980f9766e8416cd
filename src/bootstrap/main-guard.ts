// isMain(import.meta): Python's `if __name__ == '__main__':`. True only in the entry module of the
// main process: false in every child process (its entry is the bootstrap) and in every worker
// thread, which sees its parent's process.argv and so needs the explicit check.

import { readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from '../internal/threads.ts';
import { runtime } from '../internal/runtime.ts';
import { describe, invalidArgument } from '../errors.ts';

/** `import.meta` in ES modules; the CommonJS `module` object; or a module URL or path. */
export type ModuleIdentity = { url: string } | { filename: string } | string;

const extensions = ['', '.js', '.mjs', '.cjs', '.ts', '.mts', '.cts', '.tsx', '.jsx'];
let entry: string | null | undefined;

/**
 * True when called from the program's entry module in the main process.
 * @example
 * if (isMain(import.meta)) { new Process({ target: work }).start(); }
 */
export function isMain(module: ModuleIdentity): boolean {
  const file = filenameOf(module);
  if (runtime().role !== 'main' || !isMainThread()) return false;
  entry ??= entryFile();
  return entry !== null && canonical(file) === entry;
}

function filenameOf(module: ModuleIdentity): string {
  if (typeof module === 'string') return module.startsWith('file:') ? fileURLToPath(module) : resolve(module);
  if (typeof module === 'object' && module !== null) {
    if ('url' in module && typeof module.url === 'string') return fileURLToPath(module.url);
    if ('filename' in module && typeof module.filename === 'string') return module.filename;
  }
  throw invalidArgument(`isMain(): expected import.meta (ES modules) or module (CommonJS), got ${describe(module)}. Call it as isMain(import.meta).`);
}

// process.argv[1] as Node resolved it: `node app` runs app.js, `node .` the directory's package.json
// "main" (or its index.js), and a symlinked script runs its target.
function entryFile(): string | null {
  const script = process.argv[1];
  if (!script) return null; // node -e, the REPL
  const absolute = isAbsolute(script) ? script : resolve(script);
  return canonical(fileOrDirectory(absolute, 0) ?? absolute);
}

function fileOrDirectory(path: string, depth: number): string | null {
  for (const extension of extensions) if (isFile(path + extension)) return path + extension;
  if (depth > 1 || !isDirectory(path)) return null;
  const main = packageMain(path);
  return (main === undefined ? null : fileOrDirectory(resolve(path, main), depth + 1)) ?? fileOrDirectory(join(path, 'index'), depth + 1);
}

function packageMain(directory: string): string | undefined {
  try {
    const main = (JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { main?: unknown }).main;
    return typeof main === 'string' && main !== '' ? main : undefined;
  } catch {
    return undefined; // no package.json, or not one Node could read either
  }
}

function isFile(path: string): boolean {
  return statOf(path)?.isFile() ?? false;
}

function isDirectory(path: string): boolean {
  return statOf(path)?.isDirectory() ?? false;
}

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined; // not there (or not reachable): not the entry
  }
}

function canonical(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
