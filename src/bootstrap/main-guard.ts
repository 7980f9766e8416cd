// isMain(import.meta): Python's `if __name__ == '__main__':`. True only in the entry module of the
// main process: false in every child process (its entry is the bootstrap) and in every worker
// thread, which sees its parent's process.argv and so needs the explicit check.

import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
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

// process.argv[1] as Node resolved it: `node app` runs app.js, and a symlinked script runs its target.
function entryFile(): string | null {
  const script = process.argv[1];
  if (!script) return null; // node -e, the REPL
  const absolute = isAbsolute(script) ? script : resolve(script);
  for (const extension of extensions) {
    try {
      if (statSync(absolute + extension).isFile()) return canonical(absolute + extension);
    } catch {
      // not this extension: try the next one
    }
  }
  return canonical(absolute);
}

function canonical(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
