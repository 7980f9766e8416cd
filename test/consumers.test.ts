// A package consumer's view: a project whose node_modules/multiproc is this package (a symlink to
// the repository, so `import 'multiproc'` goes through package.json "exports" to the built dist/).
// Its entry program starts Processes whose targets are a function the entry module exports, one
// imported from another module of the project, CommonJS exports, and the explicit { module, name }
// form, as ESM, CommonJS (require(esm)), .ts through `node --import tsx` and the tsx CLI, and .js
// compiled by TypeScript; each child prints a line, and the program must exit 0 with nothing on
// stderr. Two consumers run on the thread backend (getContext('thread') and multiproc/dummy).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killRuns, lines, runScript, taggedProcesses, type RunOptions } from './helpers/spawn-script.ts';

const timeout = 25_000;
const root = fileURLToPath(new URL('..', import.meta.url));
const skip = existsSync(join(root, 'dist/index.js')) ? false : 'dist/index.js is missing: run `npm run build` first (`npm test` does)';
const tsxCli = join(root, 'node_modules/.bin/tsx');
const projects: string[] = [];

after(() => {
  killRuns();
  for (const dir of projects) rmSync(dir, { recursive: true, force: true });
});

/** A consumer project with these files; node_modules/multiproc (and tsx) link to this repository's. */
function project(type: 'module' | 'commonjs', files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mp-consumer-'));
  projects.push(dir);
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules/multiproc'), 'dir');
  symlinkSync(join(root, 'node_modules/tsx'), join(dir, 'node_modules/tsx'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Runs the consumer's entry program; asserts exit 0, an empty stderr, `expected` lines in any order, and no process left. */
async function assertRuns(dir: string, entry: string, expected: string[], options: RunOptions = { execArgv: [] }): Promise<void> {
  const run = await runScript(entry, [], { ...options, cwd: dir });
  assert.equal(run.stderr, '', `stderr of ${entry}`);
  assert.equal(run.code, 0, `exit code of ${entry}`);
  assert.deepEqual(lines(run.stdout).sort(), [...expected].sort(), `stdout of ${entry}`);
  assert.deepEqual(taggedProcesses(run.tag), [], 'a process of the consumer is still running');
}

/** The lines a consumer prints: one per child, `<form>: <function> ran in a child`, then the exit codes. */
function expectedLines(cases: [form: string, fn: string][]): string[] {
  return [...cases.map(([form, fn]) => `${form}: ${fn} ran in a child`), `exit codes ${cases.map(() => 0).join(',')}`];
}

// Each target prints which function ran, and whether it ran outside the main process.
const say = (fn: string): string => `console.log(\`\${form}: ${fn} ran in \${currentProcess().name === 'MainProcess' ? 'THE MAIN PROCESS' : 'a child'}\`);`;

/** The entry's main code: start every Process, join them all, print their exit codes. */
const startAll = (list: string, Process = 'Process'): string => `
  const procs = ${list}.map(([target, form]) => new ${Process}({ target, args: [form] }));
  for (const p of procs) p.start();
  for (const p of procs) await p.join();
  console.log(\`exit codes \${procs.map((p) => p.exitCode).join(',')}\`);`;

const esmCases: [string, string][] = [
  ['entry export', 'fromEntry'],
  ['imported export', 'fromLib'],
  ['explicit entry', 'fromEntry'],
  ['explicit imported', 'fromLib'],
];

const esmLib = `import { currentProcess } from 'multiproc';
export function fromLib(form) { ${say('fromLib')} }
`;

const esmMain = `import { Process, currentProcess, isMain } from 'multiproc';
import { fromLib } from './lib.mjs';

export function fromEntry(form) { ${say('fromEntry')} }

if (isMain(import.meta)) {${startAll(`[
    [fromEntry, 'entry export'],
    [fromLib, 'imported export'],
    [{ module: import.meta.url, name: 'fromEntry' }, 'explicit entry'],
    [{ module: new URL('./lib.mjs', import.meta.url).href, name: 'fromLib' }, 'explicit imported'],
  ]`)}
}
`;

const cjsCases: [string, string][] = [
  ['entry export', 'fromEntry'],
  ['imported export', 'fromLib'],
  ['exports.f', 'exports.f'],
  ['module.exports arrow', 'viaModuleExports'],
  ['module.exports = function', 'whole'],
  ['explicit entry (a path)', 'fromEntry'],
  ['explicit imported (a URL)', 'fromLib'],
];

const cjsMain = `'use strict';
const { pathToFileURL } = require('node:url');
const { Process, currentProcess, isMain } = require('multiproc');
const { fromLib } = require('./lib.cjs');
const whole = require('./whole.cjs');

function fromEntry(form) { ${say('fromEntry')} }
exports.fromEntry = fromEntry;
exports.f = function (form) { ${say('exports.f')} }; // a nameless function: found by identity
module.exports.viaModuleExports = (form) => { ${say('viaModuleExports')} };

if (isMain(module)) {
  (async () => {${startAll(`[
    [fromEntry, 'entry export'],
    [fromLib, 'imported export'],
    [exports.f, 'exports.f'],
    [module.exports.viaModuleExports, 'module.exports arrow'],
    [whole, 'module.exports = function'],
    [{ module: __filename, name: 'fromEntry' }, 'explicit entry (a path)'],
    [{ module: pathToFileURL(require.resolve('./lib.cjs')).href, name: 'fromLib' }, 'explicit imported (a URL)'],
  ]`)}
  })();
}
`;

const cjsLib = `'use strict';
const { currentProcess } = require('multiproc');
exports.fromLib = function fromLib(form) { ${say('fromLib')} };
`;

const cjsWhole = `'use strict';
const { currentProcess } = require('multiproc');
module.exports = function whole(form) { ${say('whole')} };
`;

// Four children only: each child of a .ts program loads tsx, which costs most of a second of CPU.
const tsCases: [string, string][] = [
  ['entry export', 'fromEntry'],
  ['entry const arrow', 'arrowEntry'],
  ['imported export', 'fromLib'],
  ['explicit imported default', 'libDefault'],
];

/** A TypeScript consumer; `ext` is how it spells its relative imports ('.ts' for tsx, '.js' for tsc). */
function tsFiles(ext: '.ts' | '.js'): Record<string, string> {
  return {
    'lib.ts': `import { currentProcess } from 'multiproc';
export function fromLib(form: string): void { ${say('fromLib')} }
export default function (form: string): void { ${say('libDefault')} }
`,
    'main.ts': `import { Process, currentProcess, isMain, type Target } from 'multiproc';
import { fromLib } from './lib${ext}';

export function fromEntry(form: string): void { ${say('fromEntry')} }
export const arrowEntry = (form: string): void => { ${say('arrowEntry')} };

if (isMain(import.meta)) {${startAll(`([
    [fromEntry, 'entry export'],
    [arrowEntry, 'entry const arrow'],
    [fromLib, 'imported export'],
    [{ module: new URL('./lib${ext}', import.meta.url).href, name: 'default' }, 'explicit imported default'],
  ] as [Target<[string]>, string][])`, 'Process<[string]>')}
}
`,
  };
}

/** The TypeScript consumer written for CommonJS output: isMain(module), no top-level await. */
const tsCjsMain = `import { Process, currentProcess, isMain, type Target } from 'multiproc';
import { fromLib } from './lib.js';

export function fromEntry(form: string): void { ${say('fromEntry')} }

declare const module: NodeJS.Module;
if (isMain(module)) {
  void (async () => {${startAll(`([
    [fromEntry, 'entry export'],
    [fromLib, 'imported export'],
    [{ module: __filename, name: 'fromEntry' }, 'explicit entry'],
  ] as [Target<[string]>, string][])`, 'Process<[string]>')}
  })();
}
`;

/** Compiles TypeScript files to .js the way tsc does (without type checking, which is tsc's job in `npm run typecheck`). */
function compile(files: Record<string, string>, module: 'NodeNext' | 'CommonJS'): Record<string, string> {
  const ts = createRequire(import.meta.url)('typescript') as typeof import('typescript');
  const compilerOptions = { target: ts.ScriptTarget.ES2022, module: module === 'NodeNext' ? ts.ModuleKind.ES2022 : ts.ModuleKind.CommonJS };
  return Object.fromEntries(Object.entries(files).map(([name, text]) => [name.replace(/\.ts$/, '.js'), ts.transpileModule(text, { compilerOptions, fileName: name }).outputText]));
}

describe('a package consumer', { skip }, () => {
  it('ESM (.mjs): targets exported by the entry, imported from another module, and { module, name }', { timeout }, async () => {
    const dir = project('module', { 'main.mjs': esmMain, 'lib.mjs': esmLib });
    await assertRuns(dir, 'main.mjs', expectedLines(esmCases));
  });

  it('CommonJS (.cjs, through require(esm)): exports.f, module.exports functions, a whole module.exports, and { module, name }', { timeout }, async () => {
    const dir = project('commonjs', { 'main.cjs': cjsMain, 'lib.cjs': cjsLib, 'whole.cjs': cjsWhole });
    await assertRuns(dir, 'main.cjs', expectedLines(cjsCases));
  });

  it('TypeScript run with `node --import tsx`', { timeout }, async () => {
    const dir = project('module', tsFiles('.ts'));
    await assertRuns(dir, 'main.ts', expectedLines(tsCases), { execArgv: ['--import', 'tsx'] });
  });

  it('TypeScript run with the tsx CLI', { timeout }, async () => {
    const dir = project('module', tsFiles('.js'));
    await assertRuns(dir, 'main.ts', expectedLines(tsCases), { command: tsxCli });
  });

  it('JavaScript compiled by TypeScript to ES modules', { timeout }, async () => {
    const dir = project('module', compile(tsFiles('.js'), 'NodeNext'));
    await assertRuns(dir, 'main.js', expectedLines(tsCases));
  });

  it('JavaScript compiled by TypeScript to CommonJS', { timeout }, async () => {
    const dir = project('commonjs', compile({ 'main.ts': tsCjsMain, 'lib.ts': tsFiles('.js')['lib.ts'] as string }, 'CommonJS'));
    await assertRuns(dir, 'main.js', expectedLines([['entry export', 'fromEntry'], ['imported export', 'fromLib'], ['explicit entry', 'fromEntry']]));
  });
});

/** A thread-backend consumer: getContext('thread').Process and multiproc/dummy's Process. */
function threadFiles(ext: '.mjs' | '.ts'): Record<string, string> {
  const lib = ext === '.ts' ? 'lib.ts' : 'lib.mjs';
  const form = ext === '.ts' ? 'form: string' : 'form';
  return {
    [lib]: `import { currentProcess } from 'multiproc';
export function fromLib(${form}) { ${say('fromLib')} }
`,
    [`main${ext}`]: `import { currentProcess, getContext, isMain } from 'multiproc';
import { Process as DummyProcess } from 'multiproc/dummy';
import { fromLib } from './${lib}';

export function fromEntry(${form}) { ${say('fromEntry')} }

if (isMain(import.meta)) {
  const ThreadProcess = getContext('thread').Process;
  const procs = [
    new ThreadProcess({ target: fromEntry, args: ['entry export'] }),
    new DummyProcess({ target: fromLib, args: ['imported export'] }),
    new ThreadProcess({ target: { module: import.meta.url, name: 'fromEntry' }, args: ['explicit entry'] }),
    new DummyProcess({ target: { module: new URL('./${lib}', import.meta.url).href, name: 'fromLib' }, args: ['explicit imported'] }),
  ];
  for (const p of procs) p.start();
  for (const p of procs) await p.join();
  console.log(\`exit codes \${procs.map((p) => p.exitCode).join(',')}\`);
  console.log(\`ran on \${procs.map((p) => \`\${p.startMethod} in pid \${p.pid === process.pid ? 'of the main process' : p.pid}\`).join(', ')}\`);
}
`,
  };
}

const threadLines = [...expectedLines(esmCases), `ran on ${Array(4).fill('thread in pid of the main process').join(', ')}`];

describe('a package consumer on the thread backend', { skip }, () => {
  it('ESM (.mjs) with getContext("thread") and multiproc/dummy', { timeout }, async () => {
    const dir = project('module', threadFiles('.mjs'));
    await assertRuns(dir, 'main.mjs', threadLines);
  });

  it('TypeScript run with `node --import tsx`, with getContext("thread") and multiproc/dummy', { timeout }, async () => {
    const dir = project('module', threadFiles('.ts'));
    await assertRuns(dir, 'main.ts', threadLines, { execArgv: ['--import', 'tsx'] });
  });
});

// docs/managers.md's register() example as plain JavaScript: the module that exports the type
// registers it at its top level, and is loaded again (by require(), without a loader) in the
// manager's server and in a child whose target it exports.
const mathsModule = `import { BaseManager } from 'multiproc/managers';
import { currentProcess } from 'multiproc';
export class Counter {
  #n = 0;
  increment(by = 1) { return (this.#n += by); }
}
export class MathsManager extends BaseManager {}
MathsManager.register('Counter', Counter);
export async function incrementInChild(counter) {
  console.log(\`\${currentProcess().name === 'MainProcess' ? 'THE MAIN PROCESS' : 'a child'}: \${await counter.increment(2)}\`);
}
`;

const mathsMain = (context: string) => `import { Process, isMain } from 'multiproc';
import { MathsManager, incrementInChild } from './maths.mjs';
if (isMain(import.meta)) {
  const m = await new MathsManager({ context: '${context}' }).start();
  try {
    const counter = await m.Counter();
    console.log(\`the main process: \${await counter.increment(5)}\`);
    const p = new Process({ target: incrementInChild, args: [counter] });
    p.start();
    await p.join();
    console.log(\`exit code \${p.exitCode}\`);
  } finally {
    await m.shutdown();
  }
}
`;

describe('a package consumer with a manager of its own types', { skip }, () => {
  for (const context of ['process', 'thread']) {
    it(`ESM (.mjs): the module that registers a type exports it, loaded in the ${context} server and in a child without a loader`, { timeout }, async () => {
      const dir = project('module', { 'maths.mjs': mathsModule, 'main.mjs': mathsMain(context) });
      await assertRuns(dir, 'main.mjs', ['the main process: 5', 'a child: 7', 'exit code 0']);
    });
  }
});
