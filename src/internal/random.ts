// A few unpredictable bytes, for shared-memory segment names and the authkey. From the kernel
// (getrandom) through the native addon when it is built, which the library loads anyway to start
// a child or map shared memory: Web Crypto's first call loads 27 of Node's modules, 1.5-2 ms of a
// program's first Process.start() or first shared object, and as much again in each child that
// creates one (4 ms in a busy child). Without the addon, Web Crypto.

import { tryNative } from '../native/binding.ts';

export function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const addon = tryNative();
  if (addon) addon.randomFill(bytes);
  else crypto.getRandomValues(bytes);
  return bytes;
}
