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

/** An error of the same name (a built-in class, or a made-up class of that name), with the remote stack in `cause`. */
export function rebuildError(data: ErrorData, where: string): Error {
  const Class = builtins[data.name] ?? classNamed(data.name);
  const error = new Class(data.message);
  const remote = new RemoteError(`${where}: ${data.name}: ${data.message}`);
  remote.stack = data.stack;
  Object.defineProperty(error, 'cause', { value: remote, writable: true, configurable: true, enumerable: false });
  if (data.code !== undefined) (error as { code?: unknown }).code = data.code;
  return error;
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
