// For --lib dist: bench/ compiled to plain JS in a temporary folder, so that the measured
// processes run no loader at all, like a user's compiled program. (Under `node --import tsx`
// every child the library forks would load tsx too: the library passes its execArgv on.)
// Each file is transpiled alone (no type check: `npm run typecheck` does that); `.ts` import
// specifiers become `.js`. Compiled files may import only bench/ files and node: builtins.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

const SKIP = new Set(['results', 'cpython', 'fixtures', 'node_modules']);

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : tsFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Compiles `benchDir` into a new temporary folder and returns that folder. */
export function compileBench(benchDir: string): string {
  const out = mkdtempSync(join(tmpdir(), 'multiproc-bench-'));
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  for (const file of tsFiles(benchDir)) {
    const { outputText, diagnostics = [] } = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      reportDiagnostics: true,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
        rewriteRelativeImportExtensions: true,
      },
    });
    if (diagnostics.length > 0) {
      const text = ts.flattenDiagnosticMessageText(diagnostics[0]!.messageText, '\n');
      throw new Error(`bench: cannot compile ${relative(benchDir, file)}: ${text}`);
    }
    const target = join(out, relative(benchDir, file).replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  return out;
}
