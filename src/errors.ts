// Every public error class of multiproc, in Python's hierarchy: ProcessError is the base of the
// errors about processes and their channels; Empty, Full and BrokenBarrierError stand alone, as in
// Python's queue and threading modules. Each class has a stable `code` listed in docs/errors.md.

export interface ErrorFields {
  cause?: unknown;
  code?: string;
  pid?: number;
  processName?: string;
  exitCode?: number | null;
  signal?: string | null;
}

function defineName(ctor: { prototype: Error }, name: string): void {
  // A non-enumerable name on the prototype, so instances print as their class and never carry an
  // own `name` that a structured clone would have to preserve.
  Object.defineProperty(ctor.prototype, 'name', { value: name, enumerable: false, writable: true, configurable: true });
}

/** The base of multiproc's process errors (Python's `multiprocessing.ProcessError`). */
export class ProcessError extends Error {
  code: string;
  // `declare`: no class-field initialisation, so absent fields are not own keys set to undefined.
  declare pid?: number;
  declare processName?: string;
  declare exitCode?: number | null;
  declare signal?: string | null;

  constructor(message: string, fields: ErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.code = fields.code ?? 'ERR_MP_PROCESS';
    if (fields.pid !== undefined) this.pid = fields.pid;
    if (fields.processName !== undefined) this.processName = fields.processName;
    if (fields.exitCode !== undefined) this.exitCode = fields.exitCode;
    if (fields.signal !== undefined) this.signal = fields.signal;
  }
}
defineName(ProcessError, 'ProcessError');

function subclass(name: string, defaultCode: string) {
  const Class = class extends ProcessError {
    constructor(message: string, fields: ErrorFields = {}) {
      super(message, { ...fields, code: fields.code ?? defaultCode });
    }
  };
  defineName(Class, name);
  Object.defineProperty(Class, 'name', { value: name });
  return Class;
}

/** A buffer given to `recvBytesInto()` was too small for the message (Python's `BufferTooShort`). */
export class BufferTooShort extends subclass('BufferTooShort', 'ERR_MP_BUFFER_TOO_SHORT') {}
/** A wait ran out of time where Python raises `multiprocessing.TimeoutError`. */
export class TimeoutError extends subclass('TimeoutError', 'ERR_MP_TIMEOUT') {}
/** An authkey handshake failed (Python's `AuthenticationError`). */
export class AuthenticationError extends subclass('AuthenticationError', 'ERR_MP_AUTHENTICATION') {}
/** An error raised in another process; `cause` keeps its name, message and stack. */
export class RemoteError extends subclass('RemoteError', 'ERR_MP_REMOTE') {}
/** A pool worker died while it ran a task. */
export class WorkerLostError extends subclass('WorkerLostError', 'ERR_MP_WORKER_LOST') {}

function standalone(name: string, defaultCode: string) {
  const Class = class extends Error {
    code: string;
    constructor(message: string, fields: { cause?: unknown; code?: string } = {}) {
      super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
      this.code = fields.code ?? defaultCode;
    }
  };
  defineName(Class, name);
  Object.defineProperty(Class, 'name', { value: name });
  return Class;
}

/** `getNowait()` or a timed `get()` found the queue empty (Python's `queue.Empty`). */
export class Empty extends standalone('Empty', 'ERR_MP_EMPTY') {}
/** `putNowait()` or a timed `put()` found the queue full (Python's `queue.Full`). */
export class Full extends standalone('Full', 'ERR_MP_FULL') {}
/** A Barrier was reset or aborted while a party waited (Python's `threading.BrokenBarrierError`). */
export class BrokenBarrierError extends standalone('BrokenBarrierError', 'ERR_MP_BROKEN_BARRIER') {}

/** A TypeError with a stable code, for arguments that can never work (a wrong type, an unexported target). */
export function invalidArgument(message: string, code = 'ERR_MP_INVALID_ARGUMENT'): TypeError {
  return Object.assign(new TypeError(message), { code });
}

/** A RangeError with a stable code, for a number outside what the call accepts. */
export function outOfRange(message: string, code = 'ERR_MP_OUT_OF_RANGE'): RangeError {
  return Object.assign(new RangeError(message), { code });
}

/** For a count or size refused: a RangeError if `value` is a number (out of range), else a TypeError. */
export function badNumber(value: unknown, message: string): RangeError | TypeError {
  return typeof value === 'number' ? outOfRange(message) : invalidArgument(message);
}

/** Describes a value for an error message: `-1 (number)`, `"x" (string)`, `an instance of Foo`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
    return `an instance of ${proto?.constructor?.name || 'Object'}`;
  }
  if (typeof value === 'string') return `${JSON.stringify(value)} (string)`;
  return `${String(value)} (${typeof value})`;
}
