// The surface every backend offers, as CPython's Popen classes do (popen_fork.py): start a child
// from a StartMessage, then poll, wait for, and end it. Only files in backends/ import
// child_process or worker_threads.

import type { StartMessage } from '../internal/protocol.ts';
import { invalidArgument } from '../errors.ts';

export type BackendName = 'process' | 'thread';

export interface Backend {
  readonly name: BackendName;
  /** Starts a child that runs the bootstrap with `message`. Throws if the OS refuses at once. */
  spawn(message: StartMessage): Child;
}

export interface Child {
  /** The OS process id (the parent's own pid for a thread). */
  readonly pid: number;
  /** The process id, or the thread id for a thread. */
  readonly ident: number;
  /** Python's exit code: null while running, the exit status, or -N after signal N. */
  readonly exitCode: number | null;
  /** Resolves when the child has exited. */
  readonly exited: Promise<void>;
  /**
   * Resolves true if the child ended before it began to rebuild the objects in its start message
   * (killed as it started, or its module failed to load): their copies were never taken over, and
   * the parent lets go of them (a Pipe's reader would wait for that writer for ever). False once it
   * began to rebuild them.
   */
  readonly startAbandoned: Promise<boolean>;
  /** Sends `signal` (SIGTERM or SIGKILL); a thread is stopped whatever the signal. */
  signal(signal: 'SIGTERM' | 'SIGKILL'): void;
  /** The pids whose trees belong to this child: itself, or a thread's forked children. */
  treeRoots(): number[];
  /** Lets the parent exit while this child runs (daemonic children), or not. */
  setRef(ref: boolean): void;
}

/** Python's exit code from Node's (code, signal) pair. */
export function pythonExitCode(code: number | null, signal: NodeJS.Signals | null, signals: Record<string, number>): number {
  if (signal) return -(signals[signal] ?? 0);
  return code ?? 0;
}

/** The error for a start message that structured clone refused (what reduce() could not foresee). */
export function notCloneable(processName: string, error: unknown, hint: string): TypeError {
  const detail = (error instanceof Error ? error.message : String(error)).replace(/\.$/, '');
  return invalidArgument(
    `Process.start(): ${processName}'s args or fields cannot be sent to the child: ${detail}. ` +
      `Send plain data (${hint}).`,
    'ERR_MP_NOT_CLONEABLE',
  );
}
