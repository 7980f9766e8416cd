// Process: Python's multiprocessing.Process, over a backend (a forked Node process or a worker
// thread). A Process object describes one of three things: a child this process started, this
// process itself (currentProcess()), or this process's parent (parentProcess()). Its state lives
// in a WeakMap rather than in #private fields because a child rebuilds a subclass instance with
// Object.create() (Python's unpickling, which does not call __init__ either).

import { descendants } from './process-tree.ts';
import { ProcessError, describe, invalidArgument } from './errors.ts';
import { referenceOf, unbind, type ModuleRef } from './internal/function-ref.ts';
import { discardUnreceived, keepingEffects, reduce, registerReducer, takeEffects } from './reduction.ts';
import { runtime, type ParentInfo } from './internal/runtime.ts';
import { knownOptions, optionalBoolean, optionalString, waitFor, waitOptions, type WaitOptions } from './internal/validate.ts';
import type { Backend, Child } from './backends/backend.ts';
import type { StartMessage } from './internal/protocol.ts';
import { debug, info, inheritedLog, nameProcessesWith } from './logging.ts';
import { ExitStep, atExit, daemonsEnding } from './internal/at-exit.ts';
import { installExitHooks as installSegmentExitHooks } from './resource-tracker.ts';

/** A process target: a function its module exports, or an explicit `{ module, name }`. */
export type Target<A extends unknown[]> = ((...args: A) => unknown) | ModuleRef;

export interface ProcessOptions<A extends unknown[] = unknown[]> {
  /** The function run() calls in the child, exported by its module (or `{ module, name }`). */
  target?: Target<A> | undefined;
  /** The target's arguments; they cross by structured clone. @default [] */
  args?: A | undefined;
  /** @default `Process-N` (`MyProcess-N` for a subclass; `Process-1:2` in a child) */
  name?: string | undefined;
  /** A daemonic child is terminated when its parent exits, even when the parent is SIGKILLed. @default the creating process's flag */
  daemon?: boolean | undefined;
}

/** `terminate()`/`kill()` options. */
export interface EndOptions {
  /** Also end every descendant of the process (its children, their children...). @default false */
  tree?: boolean;
}

type Role = 'child' | 'self' | 'parent';

interface ProcessState {
  role: Role;
  target: Target<unknown[]> | undefined;
  args: unknown[];
  name: string;
  daemon: boolean;
  identity: number[];
  backend: Backend | undefined;
  child: Child | null;
  closed: boolean;
  joins: number;
  /** For the self and parent roles: who this object describes. */
  info: ParentInfo | null;
  /** A child's own key, copied from this process's at construction (Python's Process._config). */
  authkey?: Uint8Array;
}

const states = new WeakMap<Process, ProcessState>();
/** Children started here and not yet known to be reaped (Python's `_children`). */
const children = new Set<Process>();
const kBackend = Symbol('multiproc.backend');
const kLibraryClass = Symbol('multiproc.libraryClass');

/**
 * The start method's backend, for a Process class bound to none. Set by context.ts, which every
 * entry point that exports Process imports; not imported here, so that a child, which runs this
 * file but starts nothing unless its code imports multiproc, does not load the backends.
 */
let startMethodBackend: (() => Backend) | undefined;

/** @internal Called once by context.ts. */
export function useStartMethodBackend(lookup: () => Backend): void {
  startMethodBackend = lookup;
}

function stateOf(process: Process, method: string): ProcessState {
  const state = states.get(process);
  if (!state) throw invalidArgument(`Process.${method}(): called on an object that is not a Process (or a subclass that skipped super()).`);
  return state;
}

/**
 * A process (or, in the thread backend, a worker thread) running `target(...args)` or an
 * overridden `run()`.
 * @example
 * export function greet(name: string) { console.log('hello', name); }
 * if (isMain(import.meta)) { const p = new Process({ target: greet, args: ['alvin'] }); p.start(); await p.join(); }
 */
export class Process<A extends unknown[] = unknown[]> {
  /** The backend a context's Process class uses; undefined means the start method's. */
  static [kBackend]: Backend | undefined;
  static [kLibraryClass] = true;

  constructor(options: ProcessOptions<A> = {}) {
    const where = `new ${new.target.name}()`;
    if (typeof options !== 'object' || options === null) {
      throw invalidArgument(`${where}: expected options { target, args, name, daemon }, got ${describe(options)}.`);
    }
    knownOptions(where, options, ['target', 'args', 'name', 'daemon']);
    const { target, args, name, daemon } = options;
    if (target !== undefined && typeof target !== 'function' && !isRef(target)) {
      throw invalidArgument(`${where}: expected \`target\` to be a function or { module, name }, got ${describe(target)}.`);
    }
    if (args !== undefined && !Array.isArray(args)) {
      throw invalidArgument(`${where}: expected \`args\` to be an array of arguments, got ${describe(args)}. Wrap a single argument: args: [value].`);
    }
    // Resolve the reference now: a target that cannot cross processes fails at the call that was given it.
    if (typeof target === 'function') referenceOf(target, `${where} (its target)`);
    const rt = runtime();
    const identity = [...rt.identity, ++rt.counter];
    const prefix = Object.hasOwn(new.target, kLibraryClass) ? 'Process' : new.target.name;
    states.set(this, {
      role: 'child',
      target: target as Target<unknown[]> | undefined,
      args: args ?? [],
      name: optionalString(where, 'name', name) ?? `${prefix}-${identity.join(':')}`,
      daemon: optionalBoolean(where, 'daemon', daemon) ?? currentProcess().daemon,
      identity,
      backend: undefined,
      child: null,
      closed: false,
      joins: 0,
      info: null,
      authkey: rt.authkey,
    });
  }

  /** What the child runs: calls `target(...args)`. Override it in a subclass instead of passing a target. */
  run(): unknown {
    const { target, args } = stateOf(this, 'run');
    if (typeof target === 'function') return target(...args);
    return undefined;
  }

  /** Starts the child now. Throws if already started, closed, or called while a child is still importing its target. */
  start(): void {
    const state = assertState(this, 'start', 'child');
    if (state.child) throw processError(this, 'start', 'it was already started; a Process can be started once. Create a new Process to run again', 'ERR_MP_ALREADY_STARTED');
    if (runtime().bootstrapping || runtime().importing.getStore()) throw bootstrappingError();
    const backend = (this.constructor as typeof Process)[kBackend] ?? startMethodBackend?.() ?? noStartMethod();
    adoptFieldsNamedLikeAccessors(this);
    const message = keepingEffects(() => startMessage(this, state));
    // What reducing the args did (a socket Connection in them moved) is final once the child is
    // spawned, and undone if it could not be.
    const effects = takeEffects();
    let spawned: Child;
    try {
      spawned = backend.spawn(message);
    } catch (error) {
      effects?.undo();
      throw error;
    }
    effects?.commit();
    // A child that ends before it takes over what its args hold (killed as it starts, its module
    // failed to load) leaves its copies to this process, which lets go of them: a Pipe's reader
    // would wait for ever for a writer that never existed, a Queue's segments would never be freed.
    const sent = [message.args, message.fields];
    void spawned.startAbandoned.then((abandoned) => {
      if (abandoned) discardUnreceived(sent);
    });
    // As Python's start() drops its args: what was passed on (a Queue, a Connection) is not kept
    // alive here by a Process object that the program still holds, to join it later.
    state.args = [];
    state.backend = backend;
    state.child = spawned;
    forgetExited(); // as Python's start(): a program that starts processes and never joins them does not keep them all
    children.add(this);
    recordForkedPid(state.child);
    state.child.setRef(!state.daemon);
    installExitHook();
    const child = state.child;
    debug(() => `started ${describeChild(this)}`);
    void child.exited.then(() => {
      forgetForkedPid(child);
      debug(() => `${describeChild(this)} ended with exitcode ${child.exitCode}`);
    });
  }

  /** Resolves when the process has exited, or after `timeout` ms; never rejects for the child's failure. */
  async join(timeout?: number | WaitOptions): Promise<void> {
    const options = waitOptions('Process.join()', timeout);
    const state = assertState(this, 'join', 'child');
    const child = state.child;
    if (!child) throw processError(this, 'join', 'it was never started; call start() first', 'ERR_MP_NOT_STARTED');
    // While someone waits, a daemonic child must keep this process alive, as a blocking join does in Python.
    if (state.joins++ === 0) child.setRef(true);
    try {
      if (await waitFor(child.exited, options)) children.delete(this);
    } finally {
      if (--state.joins === 0) child.setRef(!state.daemon);
    }
  }

  /** True from start() until the process exits. */
  isAlive(): boolean {
    const state = assertState(this, 'isAlive');
    if (state.role === 'self') return true;
    if (state.role === 'parent') return parentAlive(state.info);
    return state.child !== null && state.child.exitCode === null;
  }

  /** Sends SIGTERM (a thread is stopped); exitCode becomes -15. `{ tree: true }` ends its descendants too. */
  terminate(options: EndOptions = {}): void {
    endProcess(this, 'terminate', 'SIGTERM', options);
  }

  /** Sends SIGKILL (a thread is stopped); exitCode becomes -9. `{ tree: true }` ends its descendants too. */
  kill(options: EndOptions = {}): void {
    endProcess(this, 'kill', 'SIGKILL', options);
  }

  /** Releases the Process object. Throws while the process still runs: join() or terminate() it first. */
  close(): void {
    const state = assertState(this, 'close', 'child');
    if (state.child && state.child.exitCode === null) {
      throw processError(this, 'close', 'it is still running. Call join() or terminate() first', 'ERR_MP_STILL_RUNNING');
    }
    children.delete(this);
    state.closed = true;
  }

  get name(): string {
    return stateOf(this, 'name').name;
  }

  set name(value: string) {
    stateOf(this, 'name').name = optionalString('Process.name', 'name', value) ?? this.name;
  }

  get daemon(): boolean {
    return stateOf(this, 'daemon').daemon;
  }

  set daemon(value: boolean) {
    const state = stateOf(this, 'daemon');
    if (state.child) throw processError(this, 'daemon', 'it has already started; set daemon before start()', 'ERR_MP_ALREADY_STARTED');
    state.daemon = optionalBoolean('Process.daemon', 'daemon', value) ?? state.daemon;
  }

  /** The OS process id; undefined before start(). A thread's pid is its parent's. */
  get pid(): number | undefined {
    const state = assertState(this, 'pid');
    return state.info?.pid ?? state.child?.pid;
  }

  /** The process id, or a thread's threadId; undefined before start(). */
  get ident(): number | undefined {
    const state = assertState(this, 'ident');
    return state.info?.ident ?? state.child?.ident;
  }

  /** null while running (or not started); 0; 1 when run() threw; process.exit's code; -N after signal N. */
  get exitCode(): number | null {
    return assertState(this, 'exitCode').child?.exitCode ?? null;
  }

  /**
   * The authentication key (Python's authkey): random in the main process, inherited by children;
   * managers use it by default. A child's is its own, copied from this process's when the Process
   * was made: setting it before start() gives that child another key, and leaves this process's.
   */
  get authkey(): Uint8Array {
    const state = assertState(this, 'authkey');
    return state.authkey ?? runtime().authkey;
  }

  set authkey(value: Uint8Array) {
    const state = assertState(this, 'authkey');
    if (!(value instanceof Uint8Array)) throw invalidArgument(`Process.authkey: expected bytes (a Uint8Array or Buffer), got ${describe(value)}.`);
    if (state.role === 'parent') throw processError(this, 'authkey', "the parent's key cannot be set from here; set currentProcess().authkey for this process's own", 'ERR_MP_NOT_A_CHILD');
    if (state.child) throw processError(this, 'authkey', 'it has already started, with its key; set authkey before start()', 'ERR_MP_ALREADY_STARTED');
    if (state.role === 'self') runtime().authkey = new Uint8Array(value);
    else state.authkey = new Uint8Array(value);
  }

  /** Which backend runs this process: 'process' or 'thread' (undefined before start). */
  get startMethod(): string | undefined {
    return assertState(this, 'startMethod').backend?.name;
  }

  toString(): string {
    const state = states.get(this);
    if (!state) return '[object Process]';
    const status = state.role !== 'child' ? state.role : !state.child ? 'initial' : state.child.exitCode === null ? 'started' : `stopped exitCode=${state.child.exitCode}`;
    return `<${this.constructor.name} name='${state.name}' ${status}${state.daemon ? ' daemon' : ''}>`;
  }
}

function assertState(proc: Process, method: string, role?: Role): ProcessState {
  const state = stateOf(proc, method);
  if (state.closed) throw processError(proc, method, 'it was closed; close() is final', 'ERR_MP_CLOSED');
  if (role && state.role !== role) {
    const what = state.role === 'self' ? 'the current process' : 'the parent process';
    throw processError(proc, method, `it describes ${what}; only a child started by this process can be ${method === 'start' ? 'started' : `${method}ed`}`, 'ERR_MP_NOT_A_CHILD');
  }
  return state;
}

function endProcess(proc: Process, method: string, signal: 'SIGTERM' | 'SIGKILL', options: EndOptions): void {
  const state = assertState(proc, method, 'child');
  if (!state.child) throw processError(proc, method, 'it was never started', 'ERR_MP_NOT_STARTED');
  // Read the tree before the child dies: its children are then re-parented and lost to us.
  const tree = options.tree ? state.child.treeRoots().flatMap((pid) => [pid, ...descendants(pid)]) : [];
  state.child.signal(signal);
  for (const pid of tree) signalQuietly(pid, signal);
}

function isRef(value: unknown): value is ModuleRef {
  return typeof value === 'object' && value !== null && typeof (value as ModuleRef).module === 'string';
}

function processError(proc: Process, method: string, what: string, code: string): ProcessError {
  const state = states.get(proc);
  return new ProcessError(`Process.${method}(): ${state?.name ?? 'the process'}: ${what}.`, { code, processName: state?.name });
}

// Unreachable: Process is exported only by entry points that load context.ts.
function noStartMethod(): never {
  throw new Error(`bug in multiproc: Process.start() in process ${process.pid} found no start method (context.ts was not loaded)`);
}

function bootstrappingError(): ProcessError {
  return new ProcessError(
    `Process.start(): a new process was started while process ${process.pid} (${currentProcess().name}) was still importing its target's module. ` +
      'This usually means the module that defines the target starts processes at its top level without the main guard, ' +
      'and every child would start more children. Put the code that starts processes under the guard:\n\n' +
      '    if (isMain(import.meta)) {\n        // start processes here\n    }\n\n' +
      "(Python's `if __name__ == '__main__':`). See docs/processes.md, \"The main guard\".",
    { code: 'ERR_MP_BOOTSTRAPPING' },
  );
}

// A subclass field named like a property of Process (TypeScript's `override daemon = true`, or a
// constructor's `public override name: string`) is defined on the instance, where it hides the
// accessor: the child would then set it before it was a Process. It is taken here through the
// setter, as Python's `self.daemon = True` in __init__ is; one that hides a read-only property is
// refused.
function adoptFieldsNamedLikeAccessors(proc: Process): void {
  for (const key of Object.keys(proc)) {
    const accessor = Object.getOwnPropertyDescriptor(Process.prototype, key);
    if (!accessor?.get) continue;
    if (!accessor.set) {
      throw invalidArgument(`Process.start(): ${proc.constructor.name} has a field \`${key}\`, which hides Process's read-only \`${key}\`. Rename the field.`);
    }
    const value = (proc as unknown as Record<string, unknown>)[key];
    delete (proc as unknown as Record<string, unknown>)[key];
    accessor.set.call(proc, value);
  }
}

function startMessage(proc: Process, state: ProcessState): StartMessage {
  const Class = proc.constructor as typeof Process;
  const isSubclass = !Object.hasOwn(Class, kLibraryClass);
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(proc)) fields[key] = (proc as unknown as Record<string, unknown>)[key];
  // A partial() target's bound arguments go first in args, where library objects among them are reduced.
  const [target, bound] = state.target === undefined ? [null, []] : unbind(referenceOf(state.target, `Process.start() (${state.name}'s target)`));
  return {
    type: 'multiproc:start',
    target,
    processClass: isSubclass ? referenceOf(Class, `Process.start() (${state.name}'s class ${Class.name})`) : null,
    args: reduce(bound.length ? [...bound, ...state.args] : state.args, `Process.start(): ${state.name}'s args`) as unknown[],
    fields: reduce(fields, `Process.start(): ${state.name}'s field this`) as Record<string, unknown>,
    name: state.name,
    identity: state.identity,
    daemon: state.daemon,
    parent: { name: currentProcess().name, pid: process.pid, ident: currentProcess().ident ?? process.pid },
    childPids: null,
    threadExits: null,
    rootPid: runtime().rootPid,
    authkey: state.authkey ?? runtime().authkey,
    log: inheritedLog(),
  };
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    // ESRCH: it has already exited, which is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function parentAlive(info: ParentInfo | null): boolean {
  if (!info || runtime().role === 'thread-child') return true; // a thread's parent is this process
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// In a thread child, the pids it forks go to shared slots its parent reads for terminate({ tree }).
function recordForkedPid(child: Child): void {
  const slots = runtime().childPids;
  if (!slots || child.ident !== child.pid) return;
  for (let i = 0; i < slots.length; i++) {
    if (Atomics.compareExchange(slots, i, 0, child.pid) === 0) return;
  }
}

function forgetForkedPid(child: Child | null): void {
  const slots = runtime().childPids;
  if (!slots || !child) return;
  const i = slots.indexOf(child.pid);
  if (i >= 0) Atomics.compareExchange(slots, i, child.pid, 0);
}

let exitHookInstalled = false;

// Python's atexit handler terminates daemonic children and joins the others. Non-daemonic
// children keep the event loop alive until they exit, so only the daemonic ones are left here.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  if (runtime().role === 'main') installSegmentExitHooks();
  atExit(ExitStep.TerminateDaemons, () => {
    for (const child of children) {
      const state = states.get(child);
      if (state?.daemon && child.isAlive()) {
        info(() => `calling terminate() for daemon ${state.name}`);
        if (child.pid !== undefined && child.pid !== process.pid) daemonsEnding.add(child.pid); // a thread's: see Ring.readerEndsWithExit()
        state.child?.signal('SIGTERM');
      }
    }
  });
}

/** The Process object describing this process (or worker thread). */
export function currentProcess(): Process {
  const rt = runtime();
  rt.current ??= describing('self', { name: 'MainProcess', pid: process.pid, ident: process.pid }, false);
  return rt.current as Process;
}

nameProcessesWith(() => currentProcess().name);

/** 'Process-1 (pid 123)', or 'Process-1 (thread 4)' on the thread backend: for the log. */
export function describeChild(p: Process): string {
  return p.ident !== undefined && p.ident !== p.pid ? `${p.name} (thread ${p.ident})` : `${p.name} (pid ${p.pid})`;
}

let parent: Process | null | undefined;

/** The Process object describing the parent of this process, or null in the main process. */
export function parentProcess(): Process | null {
  const info = runtime().parent;
  parent ??= info ? describing('parent', info, false) : null;
  return parent;
}

/** The children of this process that are still running (reaping those that have exited). */
export function activeChildren(): Process[] {
  forgetExited();
  return [...children];
}

function forgetExited(): void {
  for (const child of children) if (!child.isAlive()) children.delete(child);
}

function describing(role: Role, info: ParentInfo, daemon: boolean, object?: Process): Process {
  const described = object ?? (Object.create(Process.prototype) as Process);
  states.set(described, {
    role, target: undefined, args: [], name: info.name, daemon, identity: runtime().identity,
    backend: undefined, child: null, closed: false, joins: 0, info,
  });
  return described;
}

/**
 * In a child: makes the Process its parent started, without calling a constructor (the parent
 * already ran it), and records it as the current process.
 */
export interface ChildParts {
  Class: typeof Process | null;
  target: unknown;
  args: unknown[];
  fields: Record<string, unknown>;
  ident: number;
}

export function becomeChild(message: StartMessage, { Class, target, args, fields, ident }: ChildParts): Process {
  const self = Object.assign(Object.create((Class ?? Process).prototype) as Process, fields);
  describing('self', { name: message.name, pid: process.pid, ident }, message.daemon, self);
  const state = states.get(self) as ProcessState;
  state.target = target as Target<unknown[]> | undefined;
  state.args = args;
  state.identity = message.identity;
  runtime().current = self;
  return self;
}

/** @internal Resolves when a started child exits, without keeping this process alive (unlike join()). */
export function exitOf(proc: Process): Promise<void> {
  return startedChild(proc, 'exitOf').exited;
}

/**
 * @internal Resolves true if a started child ended before it took over its args (start() then
 * lets go of their copies itself: see Child.startAbandoned); false once it took them over.
 */
export function startAbandonedOf(proc: Process): Promise<boolean> {
  return startedChild(proc, 'startAbandonedOf').startAbandoned;
}

function startedChild(proc: Process, caller: string): Child {
  const child = states.get(proc)?.child;
  if (!child) throw new Error(`bug in multiproc: ${caller}() a process that was not started`);
  return child;
}

/** Whether `Class` is Process or a subclass of it. */
export function isProcessClass(Class: unknown): Class is typeof Process {
  return typeof Class === 'function' && (Class === Process || Class.prototype instanceof Process);
}

/** Marks `Class` as a library class bound to `backend` (a context's Process class). */
export function bindBackend(Class: typeof Process, backend: Backend | undefined): void {
  Class[kBackend] = backend;
  Object.defineProperty(Class, kLibraryClass, { value: true });
}

// A Process object stays with the process that made it (Python refuses to pickle one): sending one
// says so, rather than suggesting registerClass() as for a program's own class.
const processStays = (proc: Process, where?: string): never => {
  throw invalidArgument(`${where ? `${where} (${String(proc)})` : String(proc)} cannot be sent to another process or thread: a Process object stays where it was made. Send what the other side needs instead: its pid or name, or a Queue or Event to talk to it.`);
};
registerReducer(Process, 'Process', { reduce: processStays, rebuild: () => processStays(Object.create(Process.prototype) as Process), check: processStays });
