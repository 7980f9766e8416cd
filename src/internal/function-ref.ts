// Functions cross processes by reference, never by source: a child imports the module that exports
// the function and looks the export up, as Python's spawn imports __main__. This file finds that
// reference in the parent, synchronously (Process.start() is synchronous), without ceremony from
// the user:
//   1. where the function was defined: an in-process inspector session gives its
//      [[FunctionLocation]] (a script id), and Debugger.scriptParsed maps script ids to URLs;
//   2. under which name that module exports it: by identity in module.exports for CommonJS, and
//      for ES modules by reading the module's export statements (importing the module to compare
//      identities is asynchronous, and would deadlock on an entry module that is still evaluating).
// The child re-checks what it imports and fails with a clear error if the export is missing.

import type { Session } from 'node:inspector';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, invalidArgument } from '../errors.ts';
import { importModule } from './import-module.ts';
import { libraryRequire } from './module-loaders.ts';

/** A function or class named by the module that exports it. */
export interface ModuleRef {
  /** The module's URL (`import.meta.url`) or absolute path. */
  module: string;
  /** The export's name (`default` for a default export). */
  name: string;
  /**
   * Leading arguments bound to the function (Python's `functools.partial`): it is called with
   * these first, then the call's own. partial() makes such a reference from a function.
   */
  args?: unknown[];
}

/**
 * A reference found by name (an ES module's export statements are read, not compared by identity)
 * also carries a hash of the function's source text, and importReference() compares it with the
 * export's: a function defined inside another one, under the name of an export of its module, is
 * not that export, and must not run as it.
 */
interface NamedRef extends ModuleRef {
  sourceHash?: number;
}

interface FunctionLocation {
  scriptId: string;
  lineNumber: number;
  columnNumber: number;
}

interface RemoteProperty {
  name: string;
  value?: { value?: unknown };
}

const references = new WeakMap<object, ModuleRef>();
/** The functions partial() made, with the function and the arguments each binds. */
const partials = new WeakMap<Function, { fn: Function; args: unknown[] }>();
/** The functions this thread made references of, by referenceKey() (its source's hash too, when it has one): see importReference(). */
const referenced = new Map<string, WeakRef<Function>>();
const scriptUrls = new Map<string, string>();
let session: Session | undefined;

/** `{ module, name }` for `target`: a function or class exported by its module, or a ModuleRef. */
export function referenceOf(target: unknown, where: string): ModuleRef {
  if (isModuleRef(target)) return explicitReference(target, where);
  if (typeof target !== 'function') {
    throw invalidArgument(`${where}: expected a function exported by its module, or { module, name }, got ${describe(target)}.`);
  }
  let reference = references.get(target);
  if (!reference) {
    const bound = partials.get(target);
    reference = bound ? { ...referenceOf(bound.fn, where), args: bound.args } : findReference(target, where);
    references.set(target, reference);
    if (!bound) referenced.set(referenceKey(reference), new WeakRef(target));
  }
  return reference;
}

function explicitReference(target: ModuleRef, where: string): ModuleRef {
  if (target.args === undefined) return { module: target.module, name: target.name };
  if (!Array.isArray(target.args)) {
    throw invalidArgument(`${where}: expected \`args\` of { module: '${target.module}', name: '${target.name}', args } to be an array of the leading arguments, got ${describe(target.args)}.`);
  }
  return { module: target.module, name: target.name, args: target.args };
}

/** Records that `bound` calls `fn` with `args` first, for referenceOf(); partial.ts makes such functions. */
export function definePartial(bound: Function, fn: Function, args: unknown[]): void {
  const inner = partials.get(fn);
  partials.set(bound, inner ? { fn: inner.fn, args: [...inner.args, ...args] } : { fn, args });
}

/** The reference without its bound arguments, and those arguments (empty when it binds none). */
export function unbind(reference: ModuleRef): [ModuleRef, unknown[]] {
  if (reference.args === undefined) return [reference, []];
  const { args, ...unbound } = reference;
  return [unbound, args];
}

/** One key per distinct reference: a function that only shares an export's name has a key of its own. */
export function referenceKey(reference: ModuleRef): string {
  const hash = (reference as NamedRef).sourceHash;
  return `${reference.module}#${reference.name}${hash === undefined ? '' : `#${hash}`}`;
}

export function isModuleRef(value: unknown): value is ModuleRef {
  return typeof value === 'object' && value !== null &&
    typeof (value as ModuleRef).module === 'string' && typeof (value as ModuleRef).name === 'string';
}

function findReference(fn: Function, where: string): ModuleRef {
  let url: string;
  try {
    url = definingModule(fn, where);
  } catch (error) {
    // Node's own functions (os.cpus, fs.readFileSync) cross as what exports them, as Python pickles
    // os.cpu_count by reference.
    const builtin = nodeExportOf(fn);
    if (builtin) return builtin;
    throw error;
  }
  const reference = referenceIn(url, fn);
  if (reference === undefined) {
    throw unreferenceable(fn, where, `it is not exported by its module (${url})`);
  }
  return reference;
}

function definingModule(fn: Function, where: string): string {
  const properties = functionInternals(fn);
  if (properties.some((p) => p.name === '[[TargetFunction]]')) {
    throw unreferenceable(fn, where, 'it is a bound function; export the original function and bind the values with partial(original, ...values) instead of bind()');
  }
  const location = properties.find((p) => p.name === '[[FunctionLocation]]')?.value?.value as FunctionLocation | undefined;
  if (!location) throw unreferenceable(fn, where, 'it is a built-in function, defined in no module');
  let url = scriptUrls.get(location.scriptId);
  if (url === undefined) {
    refreshScriptUrls();
    url = scriptUrls.get(location.scriptId);
  }
  if (!url || url.startsWith('node:')) {
    throw unreferenceable(fn, where, 'it was defined by eval or in Node itself, not in a module file');
  }
  return url.startsWith('/') ? `file://${url}` : url;
}

/**
 * `{ module: 'node:os', name: 'cpus' }` for a function that a Node module this thread has loaded
 * exports under a name; undefined for any other. The module with the shortest name wins
 * (path.join, not path/posix's same function).
 */
function nodeExportOf(fn: Function): ModuleRef | undefined {
  // Only modules already loaded can have made `fn` (loading the others has costs and warnings).
  const loadList = (process as { moduleLoadList?: string[] }).moduleLoadList ?? [];
  const loaded = new Set(loadList.filter((entry) => entry.startsWith('NativeModule ')).map((entry) => entry.slice('NativeModule '.length)));
  const { builtinModules } = process.getBuiltinModule('node:module');
  const candidates = builtinModules.filter((name) => loaded.has(name) && !name.startsWith('_')).sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  for (const name of candidates) {
    const exports = process.getBuiltinModule(`node:${name}`) as Record<string, unknown> | undefined;
    if (typeof exports !== 'object' && typeof exports !== 'function') continue;
    for (const key of Object.keys(exports)) {
      if (key !== 'default' && exports[key] === fn) return { module: `node:${name}`, name: key };
    }
  }
  return undefined;
}

// node:inspector is loaded on first use: a child that starts no process never pays for it.
function inspector(): Session {
  if (!session) {
    const { Session } = process.getBuiltinModule('node:inspector');
    session = new Session();
    session.connect();
    session.on('Debugger.scriptParsed', ({ params }) => scriptUrls.set(params.scriptId, params.url));
  }
  return session;
}

// An in-process inspector session answers synchronously: the callback has run when post() returns.
function post<T>(method: string, params: object): T {
  let result: T | undefined;
  let failure: Error | null = null;
  (inspector().post as (m: string, p: object, cb: (e: Error | null, r: T) => void) => void)(method, params, (error, value) => {
    failure = error;
    result = value;
  });
  if (failure) throw failure;
  if (result === undefined) throw new Error(`bug in multiproc: inspector ${method} did not answer synchronously`);
  return result;
}

// Enabling the debugger replays a scriptParsed event for every script loaded so far; disabling it
// at once keeps the debugger's costs (breakpoint bookkeeping, slower code paths) away from user code.
function refreshScriptUrls(): void {
  post('Debugger.enable', {});
  post('Debugger.disable', {});
}

const kProbe = Symbol.for('multiproc.functionProbe');

function functionInternals(fn: Function): RemoteProperty[] {
  const global = globalThis as { [kProbe]?: Function };
  global[kProbe] = fn;
  try {
    const evaluated = post<{ result: { objectId?: string } }>('Runtime.evaluate', {
      expression: `globalThis[Symbol.for('multiproc.functionProbe')]`,
      objectGroup: 'multiproc',
    });
    const objectId = evaluated.result.objectId;
    if (!objectId) return [];
    const { internalProperties = [] } = post<{ internalProperties?: RemoteProperty[] }>('Runtime.getProperties', {
      objectId,
      ownProperties: true,
    });
    return internalProperties;
  } finally {
    delete global[kProbe];
    post('Runtime.releaseObjectGroup', { objectGroup: 'multiproc' });
  }
}

function referenceIn(url: string, fn: Function): NamedRef | undefined {
  if (!url.startsWith('file:')) return undefined;
  const path = fileURLToPath(url.replace(/[?#].*$/, ''));
  const cjs = libraryRequire().cache[path];
  if (cjs) {
    const name = exportNameByIdentity(cjs.exports, fn);
    if (name !== undefined) return { module: url, name };
    // A module still running its top level has not bound its exports yet: an ES module that
    // require() loads (how a child loads its modules) and that registers its own export (a
    // manager's register()) is found in its source instead, as one that import() loads.
    if (cjs.loaded) return undefined;
  }
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch {
    return undefined; // an unreadable module cannot be checked: the caller reports it as not exported
  }
  const name = exportNameInSource(source, fn.name);
  return name === undefined ? undefined : { module: url, name, sourceHash: sourceHash(fn) };
}

/** A 32-bit FNV-1a hash of the function's (or class's) source text, as V8 keeps it. */
function sourceHash(fn: Function): number {
  const text = Function.prototype.toString.call(fn);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function exportNameByIdentity(exports: unknown, fn: Function): string | undefined {
  if (exports === fn) return 'default';
  if ((typeof exports !== 'object' && typeof exports !== 'function') || exports === null) return undefined;
  for (const key of Object.keys(exports)) {
    if ((exports as Record<string, unknown>)[key] === fn) return key;
  }
  return undefined;
}

const identifier = '[A-Za-z_$][\\w$]*';
const declarationExport = new RegExp(
  `^\\s*export\\s+(default\\s+)?(?:declare\\s+)?(?:async\\s+)?(?:abstract\\s+)?(?:function\\s*\\*?|class|const|let|var)\\s*(${identifier})`,
  'gm',
);
const listExport = /^\s*export\s*\{([^}]*)\}(?!\s*from)/gm;
const defaultIdentifierExport = new RegExp(`^\\s*export\\s+default\\s+(${identifier})\\s*;?\\s*$`, 'gm');
const anonymousDefaultExport = /^\s*export\s+default\s+(?:async\s+)?(?:function\s*\*?\s*\(|class\s*[{e]|\()/m;

/** The name under which a module's source exports the local binding `localName`. */
export function exportNameInSource(source: string, localName: string): string | undefined {
  const code = withoutCommentsAndTemplates(source);
  if (localName === 'default' || localName === '') {
    return anonymousDefaultExport.test(code) ? 'default' : undefined;
  }
  for (const match of code.matchAll(declarationExport)) {
    if (match[2] === localName) return match[1] ? 'default' : localName;
  }
  for (const match of code.matchAll(listExport)) {
    for (const item of (match[1] ?? '').split(',')) {
      const [local, exported] = item.replace(/^\s*type\s+/, '').trim().split(/\s+as\s+/);
      if (local === localName) return (exported ?? local).trim().replace(/^(['"])(.*)\1$/, '$2');
    }
  }
  for (const match of code.matchAll(defaultIdentifierExport)) {
    if (match[1] === localName) return 'default';
  }
  return undefined;
}

// A `/` starts a regular expression literal, not a division, after these (or at the start).
const beforeRegExpChars = '(,=:[!&|?{};+-*%<>~^';
const beforeRegExpWord = /\b(?:return|typeof|case|do|else|in|of|new|delete|void|throw|instanceof|yield|await)$/;

const plainRun = /[^/'"`{}]+/y;

function regExpCanFollow(code: string): boolean {
  return code === '' || beforeRegExpChars.includes(code.at(-1) as string) || beforeRegExpWord.test(code);
}

/**
 * The source with its comments and the text of its template literals removed, so that neither a
 * commented-out export nor a `/*` inside a string ('dist/*') nor an `export` line inside a
 * template changes what the export patterns see. Quoted strings are kept (`export { f as "name" }`),
 * and regular expression literals are skipped whole, so that a quote in one starts no string.
 */
function withoutCommentsAndTemplates(source: string): string {
  let out = '';
  let tail = ''; // the last few characters of code before any trailing whitespace
  let i = 0;
  const braces: number[] = []; // for each open `${`, the brace depth at which it closes
  let depth = 0;
  const emit = (text: string): void => {
    out += text;
    const trimmed = text.trimEnd();
    if (trimmed) tail = (tail + trimmed).slice(-12);
  };
  while (i < source.length) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === '/' && (next === '/' || next === '*')) {
      const end = source.indexOf(next === '/' ? '\n' : '*/', i + 2);
      const stop = end < 0 ? source.length : end + (next === '*' ? 2 : 0);
      out += source.slice(i, stop).includes('\n') ? '\n' : ' ';
      i = stop;
    } else if (c === "'" || c === '"' || (c === '/' && regExpCanFollow(tail))) {
      const end = endOfQuoted(source, i, c);
      emit(source.slice(i, end));
      i = end;
    } else if (c === '`' || (c === '}' && braces.at(-1) === depth)) {
      if (c === '}') braces.pop();
      else depth++;
      const end = endOfTemplateText(source, i + 1);
      const interpolation = source.startsWith('${', end);
      emit(interpolation ? '`${' : '`');
      if (interpolation) braces.push(depth);
      else depth--;
      i = end + (interpolation ? 2 : 1);
    } else {
      plainRun.lastIndex = i;
      const run = c === '{' || c === '}' || c === '/' ? c : (plainRun.exec(source) as RegExpExecArray)[0];
      depth += run === '{' ? 1 : run === '}' ? -1 : 0;
      emit(run);
      i += run.length;
    }
  }
  return out;
}

/** The index after a string or regular expression literal that opens at `start`, or its line's end. */
function endOfQuoted(source: string, start: number, quote: string): number {
  let inClass = false;
  for (let i = start + 1; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === '\n') return i;
    else if (quote === '/' && (c === '[' || c === ']')) inClass = c === '[';
    else if (c === quote && !inClass) return i + 1;
  }
  return source.length;
}

/** The index of the backtick or `${` that ends the template text starting at `start`. */
function endOfTemplateText(source: string, start: number): number {
  for (let i = start; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === '`' || (c === '$' && source[i + 1] === '{')) return i;
  }
  return source.length;
}

const isClass = (fn: Function) => /^class\b/.test(Function.prototype.toString.call(fn));

function unreferenceable(fn: Function, where: string, reason: string): TypeError {
  // The name to suggest: a bound function's original name, or any name where there is none to use.
  const original = fn.name.replace(/^(?:bound )+/, '');
  const name = new RegExp(`^${identifier}$`).test(original) && original !== 'anonymous' ? original : 'work';
  return invalidArgument(
    `${where}: ${describe(fn)} cannot be sent to another process: ${reason}. ` +
      `Functions cross processes by reference (module URL and export name), never by source: ` +
      `export it from its module (\`export ${isClass(fn) ? `class ${name} ...` : `function ${name}(...) {}`}\`), ` +
      `or pass { module: import.meta.url, name: '${name}' } naming an export.`,
    'ERR_MP_TARGET_NOT_REFERENCEABLE',
  );
}

/** This library's own folder (src/, or dist/ holding the built dist/internal/multiproc.js): its modules hold no user code. */
const libraryFolder = new URL('../', import.meta.url).href;

/** Whether `url` is a module of this library itself (a pool worker's or a manager server's loop). */
export function isLibraryModule(url: string | undefined): boolean {
  return url !== undefined && url.startsWith(libraryFolder);
}

/**
 * Imports `reference` and returns the export (with the reference's bound arguments bound to it), or
 * throws naming the module, the name and the fix.
 */
export async function importReference(reference: ModuleRef): Promise<unknown> {
  // A function this thread made the reference of is at hand: its module's import would wait until
  // that module has run, for ever when that module is the one awaiting (a manager's serveForever()
  // at the top level of the module that registers its types, as in Python's examples).
  const value = referenced.get(referenceKey(reference))?.deref() ?? exportOf(await importModule(reference.module), reference);
  checkSource(reference, value);
  const args = reference.args;
  if (args === undefined || args.length === 0) return value;
  if (typeof value !== 'function') {
    throw invalidArgument(`${reference.module} exports '${reference.name}' as ${describe(value)}, not a function; arguments cannot be bound to it.`, 'ERR_MP_EXPORT_NOT_FOUND');
  }
  return value.bind(null, ...args);
}

function checkSource(reference: ModuleRef, value: unknown): void {
  const expected = (reference as NamedRef).sourceHash;
  if (expected !== undefined && (typeof value !== 'function' || sourceHash(value) !== expected)) {
    throw invalidArgument(
      `${reference.module}'s export '${reference.name}' is not the function that was sent to process ${process.pid} under that name: ` +
        `its source differs. The function sent was defined inside another function or block, and only shares the export's name. ` +
        `Export the function itself under a name of its own (or pass { module, name } to run the export).`,
      'ERR_MP_TARGET_NOT_REFERENCEABLE',
    );
  }
}

function exportOf(namespace: Record<string, unknown>, reference: ModuleRef): unknown {
  if (reference.name in namespace && namespace[reference.name] !== undefined) return namespace[reference.name];
  // A CommonJS module's exports arrive as `default` (named exports only when Node can detect them).
  const commonjs = namespace.default as Record<string, unknown> | undefined;
  if (commonjs && (typeof commonjs === 'object' || typeof commonjs === 'function') && reference.name in commonjs) {
    return commonjs[reference.name];
  }
  throw invalidArgument(
    `${reference.module} has no export named '${reference.name}' in process ${process.pid}. ` +
      `Export the function or class under that name, or pass the right { module, name }.`,
    'ERR_MP_EXPORT_NOT_FOUND',
  );
}
