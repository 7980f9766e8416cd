// What every child runs, as a forked process or as a worker thread (child.ts is its entry script):
// receive the start message, import the target's module with the main guard off, run the target,
// report a failure on stderr with Python's exit code 1, and let the event loop drain (Python joins
// a child's non-daemonic threads before it exits; we let its pending work finish).
//
// A child run from src/ loads only what it needs: this file's imports, the target's module, and
// the modules of the library objects that arrive in its args (ensureReducers); importing every
// module of the library takes 55-80 ms in a fresh Node. The built library is one module
// (scripts/build.ts), which a child loads whole, faster than those few separate ones.

import { closeSync, readSync, writeSync } from 'node:fs';
import { inspect } from 'node:util';
import { constants } from 'node:os';
import { tryNative } from '../native/binding.ts';
import { START_FD, START_HEADER, TAKING_OVER, TAKING_OVER_THREAD, isStartMessage, startHeader, type StartMessage } from '../internal/protocol.ts';
import { runtime } from '../internal/runtime.ts';
import { workerThreads } from '../internal/threads.ts';
import { importReference, isLibraryModule } from '../internal/function-ref.ts';
import { invalidArgument, describe } from '../errors.ts';
import { ensureReducers, rebuild } from '../reduction.ts';
import { becomeChild, isProcessClass, type Process } from '../process.ts';
import { info, inheritLog } from '../logging.ts';

/**
 * Runs this child: its start message comes from the parent process, or with the worker thread.
 * `inProcess`: whether this is a child process's main thread, when the entry script knows (then
 * node:worker_threads is not loaded to ask: see src/internal/threads.ts).
 */
export async function bootChild(inProcess: boolean = workerThreads().isMainThread): Promise<void> {
  await runChild(inProcess ? readStart() : (workerThreads().workerData as StartMessage), inProcess);
}

// A child process reads its start message synchronously from its own pipe (START_FD; see the
// fork backend), where the parent wrote it right after the fork. The pipe stays open until the
// objects in the message are rebuilt (see releaseStart()).
function readStart(): StartMessage {
  const { length, decode } = startHeader(readExactly(START_FD, START_HEADER));
  const received = decode(readExactly(START_FD, length));
  if (!isStartMessage(received)) throw new Error(`bug in multiproc: a child's start message was not one: ${inspect(received)}`);
  return received;
}

function readExactly(fd: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let at = 0; at < length; ) {
    const read = readSync(fd, bytes, at, length - at, null);
    // A parent that exited has left this child to init (pid 1, or a subreaper): its pid is not the parent's.
    if (read === 0) throw new Error(`multiproc: the start message ended after ${at} of ${length} bytes: the parent process exited (or died) while it was still writing it.`);
    at += read;
  }
  return bytes;
}

async function runChild(start: StartMessage, inProcess: boolean): Promise<void> {
  const rt = runtime();
  rt.role = inProcess ? 'process-child' : 'thread-child';
  rt.identity = start.identity;
  rt.parent = start.parent;
  rt.childPids = start.childPids ? new Int32Array(start.childPids) : null;
  if (start.threadExits) rt.threadExits = new Int32Array(start.threadExits);
  rt.rootPid = start.rootPid;
  rt.authkey = new Uint8Array(start.authkey);
  inheritLog(start.log);
  if (inProcess) watchParent(start);
  const ident = inProcess ? process.pid : workerThreads().threadId;
  // A provisional self, so that currentProcess() is right while the target's module is imported.
  becomeChild(start, { Class: null, target: undefined, args: [], fields: {}, ident });
  rt.bootstrapping = true;
  let self: Process;
  try {
    const imports = () => Promise.all([start.target ? importReference(start.target) : undefined, start.processClass ? importReference(start.processClass) : null]);
    // The library's own targets (pool workers, manager servers) have no top-level main() to guard
    // against: they load no import guard either.
    const loadTarget = start.processClass === null && isLibraryModule(start.target?.module) ? imports() : import('./import-guard.ts').then(({ importGuarded }) => importGuarded(rt, imports));
    // The modules of the library objects in args and fields (a Queue, a Lock), while the target's loads.
    const [[target, Class]] = await Promise.all([loadTarget, ensureReducers([start.args, start.fields])]);
    rt.bootstrapping = false;
    takingOver(start, inProcess);
    // Rebuilt once the target's module ran: what it registered (a manager's proxytype) applies to them.
    const args = rebuild(start.args, `${start.name}'s args`) as unknown[];
    const fields = rebuild(start.fields, `${start.name}'s fields`) as Record<string, unknown>;
    if (inProcess) releaseStart();
    if (target !== undefined && typeof target !== 'function') {
      throw invalidArgument(`${start.target?.module} exports '${start.target?.name}' as ${describe(target)}, not a function; it cannot be ${start.name}'s target.`, 'ERR_MP_EXPORT_NOT_FOUND');
    }
    if (Class !== null && !isProcessClass(Class)) {
      throw invalidArgument(`${start.processClass?.module} exports '${start.processClass?.name}' as ${describe(Class)}, not a Process subclass.`, 'ERR_MP_EXPORT_NOT_FOUND');
    }
    self = becomeChild(start, { Class, target, args, fields, ident });
    info(() => 'child process calling self.run()');
    await untilSettled(self.run(), start.name);
  } catch (error) {
    rt.bootstrapping = false;
    if (inProcess) releaseStart();
    // Python prints "Process Process-1:" and the traceback; the exit code is 1.
    process.stderr.write(`Process ${start.name}:\n${inspect(error)}\n`);
    process.exitCode = 1;
  }
  info(() => `process exiting with exitcode ${process.exitCode ?? 0}`);
}

// A run() whose promise never settles ends with the event loop (nothing is left that could settle
// it): the child says so and exits with 13, Node's code for a top-level await left unsettled, not
// 0 as if it had finished.
async function untilSettled(running: unknown, name: string): Promise<void> {
  const unsettled = () => {
    process.stderr.write(`Process ${name}: its target never finished: the promise it returned never settled, and nothing was left to run that could settle it.\n`);
    process.exitCode = 13;
  };
  process.once('beforeExit', unsettled);
  try {
    await running;
  } finally {
    process.off('beforeExit', unsettled);
  }
}

// Tells the parent that this child takes over the objects in its args and fields now: a child
// that ends before this never took them, and the parent lets go of them (Child.startAbandoned).
function takingOver(start: StartMessage, inProcess: boolean): void {
  if (inProcess) {
    try {
      writeSync(START_FD, Buffer.of(TAKING_OVER));
    } catch {
      // the parent is gone: no one to tell
    }
    return;
  }
  const { started } = start as { started?: SharedArrayBuffer };
  if (!started) return;
  const word = new Int32Array(started);
  Atomics.store(word, 0, TAKING_OVER_THREAD);
  Atomics.notify(word, 0);
}

// Closing the start pipe tells a parent that is exiting that this child has attached the shared
// memory of its args and fields: only then may the parent's exit unlink it (see the fork backend).
let startReleased = false;

function releaseStart(): void {
  if (startReleased) return;
  startReleased = true;
  closeSync(START_FD);
}

// A daemonic child ends with its parent, as Python's parent would have terminated it; a
// non-daemonic one runs on, as in Python. The kernel's PDEATHSIG tells it at once, even while it is
// busy in synchronous code; where the native addon is not built, it looks every
// PARENT_POLL_MS whether it was re-parented (an unref'd timer, which never keeps it alive).
function watchParent(start: StartMessage): void {
  if (!start.daemon) return;
  const addon = tryNative();
  // A parent that died before prctl() has already re-parented us: end now, as PDEATHSIG would have.
  const parentPid = addon ? addon.setParentDeathSignal(constants.signals.SIGTERM) : process.ppid;
  const endIfOrphaned = (ppid: number) => {
    if (ppid !== start.parent.pid) process.kill(process.pid, 'SIGTERM');
  };
  endIfOrphaned(parentPid);
  if (!addon) setInterval(() => endIfOrphaned(process.ppid), PARENT_POLL_MS).unref();
}

const PARENT_POLL_MS = 200;
