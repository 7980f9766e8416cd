// The messages between a parent and the child bootstrap, as data. Every message carries a
// namespaced `type`, so that ours never collide with what user code sends on the same channel.

import type { ModuleRef } from './function-ref.ts';
import type { ParentInfo } from './runtime.ts';

/** What a child needs to become the Process its parent started. */
export interface StartMessage {
  type: 'multiproc:start';
  /** The function target (a Process created with `{ target }`), or null. */
  target: ModuleRef | null;
  /** The Process subclass whose run() to call, or null for the base Process. */
  processClass: ModuleRef | null;
  /** The target's arguments, reduced (see reduction.ts). */
  args: unknown[];
  /** A subclass instance's own fields, reduced. */
  fields: Record<string, unknown>;
  name: string;
  identity: number[];
  daemon: boolean;
  parent: ParentInfo;
  /** Thread children only: where the thread records the pids of the processes it forks. */
  childPids: SharedArrayBuffer | null;
  /** The pid of the program's main process. */
  rootPid: number;
  /** The parent's authkey, which the child inherits. */
  authkey: Uint8Array;
}

/**
 * A child process reads its start message from this file descriptor (a pipe of its own, the
 * child's stdio[3]): a 4-byte little-endian length, then the message as v8.serialize() wrote it.
 */
export const START_FD = 3;

export function isStartMessage(message: unknown): message is StartMessage {
  return typeof message === 'object' && message !== null && (message as StartMessage).type === 'multiproc:start';
}
