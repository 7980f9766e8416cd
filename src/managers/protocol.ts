// Requests from proxies to a manager's server and the server's replies, as data.

import type { ErrorData } from '../internal/remote-error.ts';
import type { ModuleRef } from '../internal/function-ref.ts';

export type Request =
  | { id: number; op: 'create'; typeid: string; args: unknown[] }
  /** `cancellable`: the caller passed an AbortSignal; a 'cancel' for this id may follow. */
  | { id: number; op: 'call'; server: number; oid: number; method: string; args: unknown[]; caller: string; cancellable?: boolean }
  /** The caller's signal aborted: end the call `of`'s wait if it still waits (no reply of its own). */
  | { id: number; op: 'cancel'; of: number }
  | { id: number; op: 'track'; name: string }
  | { id: number; op: 'shutdown' }
  /** From a client on this machine: go on over shared-memory rings (the reply is that Connection). */
  | { id: number; op: 'rings' };

/** `cancelled`: the call's wait was ended by its 'cancel', and nothing was done (the caller rejects with its signal's reason). */
/** The waits whose caller's AbortSignal can end them (see builtins.ts), as error messages name them. */
export const CANCELLABLE_WAITS = 'Queue get/put/join, Lock, RLock, Semaphore and Condition acquire, Event.wait and Barrier.wait';

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ErrorData; cancelled?: boolean };

/** What a proxy knows of its referent: enough to reconnect from any process. */
export interface ProxyState {
  address: string | { host: string; port: number };
  authkey: Uint8Array | null;
  /** Which server made the referent: a server started later at the same address has other objects under the same oids. */
  server: number;
  oid: number;
  typeid: string;
  exposed: string[];
  /** The proxies' class (register()'s proxytype), by reference; null: the generic proxy. */
  proxytype?: ModuleRef | null;
  /** As Created's `waits`. */
  waits?: Record<string, number[]>;
}

/** The reply to 'create': the new object's id and the methods its proxy may call. */
export interface Created {
  server: number;
  oid: number;
  exposed: string[];
  /** Its waits that an AbortSignal may end, with where their options may be among the arguments. */
  waits?: Record<string, number[]>;
}
