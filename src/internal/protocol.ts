// The messages between a parent and the child bootstrap, as data, and how a child process's start
// message is written to its pipe. Every message carries a namespaced `type`, so that ours never
// collide with what user code sends on the same channel.

import { native, tryNative } from '../native/binding.ts';
import type { ModuleRef } from './function-ref.ts';
import type { ParentInfo } from './runtime.ts';
import type { InheritedLog } from '../logging.ts';

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
  /** Thread children only: this process's map of ended threads (see thread-exits.ts). */
  threadExits: SharedArrayBuffer | null;
  /** The pid of the program's main process. */
  rootPid: number;
  /** The parent's authkey, which the child inherits. */
  authkey: Uint8Array;
  /** The parent's log level and stderr handler (logging.ts), if it made a logger. */
  log: InheritedLog | null;
}

/**
 * A child process reads its start message from this file descriptor (a pipe of its own, the
 * child's stdio[3]): START_HEADER bytes (the body's length, 4 bytes little-endian, then a byte
 * that says which serializer wrote it), then the body.
 */
export const START_FD = 3;
export const START_HEADER = 5;
/**
 * The byte a child process writes back on START_FD (a socket pair, both ways) as it begins to
 * rebuild the objects in its start message: a child that ends without it never took them over.
 */
export const TAKING_OVER = 1;
/** A thread child's `started` word: 1 once it runs code of its own, TAKING_OVER_THREAD as it begins to rebuild. */
export const TAKING_OVER_THREAD = 2;
/** Written by V8's serializer through the native addon; by node:v8 where the addon is not built. */
const BY_ADDON = 1;
const BY_NODE_V8 = 0;

/**
 * The start message as the chunks to write. Through the addon where it is built: a child that
 * reads it so need not load node:v8, which loads Node's streams with it, 3-4 ms of every child's
 * start. The message's args are reduced already (reduction.ts): the two serializers give the same
 * values for them. Throws V8's DataCloneError for what cannot cross.
 */
export function encodeStart(message: StartMessage): Uint8Array[] {
  const addon = tryNative();
  if (addon) {
    const scratch = new Uint8Array(4096);
    const written = addon.serialize(message, scratch, START_HEADER);
    const bytes = typeof written === 'number' ? scratch.subarray(0, START_HEADER + written) : written;
    return [withHeader(bytes, bytes.byteLength - START_HEADER, BY_ADDON)];
  }
  const body = process.getBuiltinModule('node:v8').serialize(message);
  return [withHeader(new Uint8Array(START_HEADER), body.byteLength, BY_NODE_V8), body];
}

function withHeader(bytes: Uint8Array, bodyLength: number, format: number): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset, START_HEADER).setUint32(0, bodyLength, true);
  bytes[4] = format;
  return bytes;
}

/** The body's length and how to decode it, from the START_HEADER bytes. */
export function startHeader(header: Uint8Array): { length: number; decode: (body: Uint8Array) => unknown } {
  const length = new DataView(header.buffer, header.byteOffset, START_HEADER).getUint32(0, true);
  const decode = header[4] === BY_ADDON ? (body: Uint8Array) => native().deserialize(body, 0, body.byteLength) : (body: Uint8Array) => process.getBuiltinModule('node:v8').deserialize(body);
  return { length, decode };
}

export function isStartMessage(message: unknown): message is StartMessage {
  return typeof message === 'object' && message !== null && (message as StartMessage).type === 'multiproc:start';
}
