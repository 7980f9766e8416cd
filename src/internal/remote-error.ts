// Errors that cross processes as data (Node's worker errors do the same): the sender describes
// the error; the receiver rebuilds an error of the same name, message and code, whose `cause` is a
// RemoteError holding the remote stack. A value that cannot be described still arrives as text.

import * as errors from '../errors.ts';

const { RemoteError } = errors;

export interface ErrorData {
  name: string;
  message: string;
  stack: string;
  code?: unknown;
}

export function describeError(error: unknown): ErrorData {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, stack: error.stack ?? `${error.name}: ${error.message}`, ...(code === undefined ? {} : { code: typeof code === 'string' || typeof code === 'number' ? code : String(code) }) };
  }
  return { name: 'Error', message: String(error), stack: `thrown value: ${String(error)}` };
}

// The built-ins and the library's own classes arrive as themselves, so instanceof works.
const builtins: Record<string, new (message: string) => Error> = {
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
  ProcessError: errors.ProcessError, BufferTooShort: errors.BufferTooShort, TimeoutError: errors.TimeoutError,
  AuthenticationError: errors.AuthenticationError, RemoteError: errors.RemoteError, WorkerLostError: errors.WorkerLostError,
  Empty: errors.Empty, Full: errors.Full, BrokenBarrierError: errors.BrokenBarrierError,
};
const madeClasses = new Map<string, new (message: string) => Error>();
/** Errors made away from the call they fail: see awayFromCaller(). */
const awayFromCallers = new WeakSet<object>();

/**
 * Marks an error that the library made away from the call it fails (rebuilt from a worker's
 * message, or a pool's own: a lost worker, a timeout): its stack is the library's receive path.
 * thrownToCaller() points it at the code that awaits the call instead.
 */
export function awayFromCaller<E>(error: E): E {
  if (typeof error === 'object' && error !== null) awayFromCallers.add(error);
  return error;
}

/**
 * An error marked by awayFromCaller(), with its stack where the program awaited the call, as
 * Python's traceback ends at the `pool.apply(...)` line (the remote stack stays in `cause`).
 * Called in the awaited async function after an await, where V8's async stack trace holds the
 * callers awaiting it; `above` is that function, left out with the frames above it. Other errors
 * (a signal's reason) keep their stacks.
 */
export function thrownToCaller(error: unknown, above: Function): unknown {
  if (typeof error === 'object' && error !== null && awayFromCallers.has(error)) Error.captureStackTrace(error, above);
  return error;
}

/** An error of the same name (a built-in class, or a made-up class of that name), with the remote stack in `cause`. */
export function rebuildError(data: ErrorData, where: string): Error {
  const Class = builtins[data.name] ?? classNamed(data.name);
  const error = new Class(data.message);
  const remote = new RemoteError(`${where}: ${data.name}: ${data.message}`);
  remote.stack = data.stack;
  Object.defineProperty(error, 'cause', { value: remote, writable: true, configurable: true, enumerable: false });
  if (data.code !== undefined) (error as { code?: unknown }).code = data.code;
  return awayFromCaller(error);
}

function classNamed(name: string): new (message: string) => Error {
  let Class = madeClasses.get(name);
  if (!Class) {
    Class = { [name]: class extends Error {} }[name] as new (message: string) => Error;
    Object.defineProperty(Class.prototype, 'name', { value: name, enumerable: false, writable: true, configurable: true });
    madeClasses.set(name, Class);
  }
  return Class;
}
