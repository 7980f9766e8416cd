// The `process` backend: a new Node process (child_process.spawn) running the one bootstrap file,
// with the parent's execArgv as fork() would pass it, so that a loader such as tsx works in the
// child too. Not fork() itself: its IPC channel costs every child 7-8 ms of its start (Node loads
// streams, net, dgram and child_process to set it up), and nothing travels on it. The start
// message has a pipe of its own; the parent's death reaches a child by PR_SET_PDEATHSIG (boot.ts).

import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Duplex, Writable } from 'node:stream';
import { readlinkSync, writeSync } from 'node:fs';
import { ExitStep, atExit } from '../internal/at-exit.ts';
import { monotonicMs } from '../internal/clock.ts';
import { START_FD, TAKING_OVER, encodeStart, type StartMessage } from '../internal/protocol.ts';
import { bootstrapUrl } from '../bootstrap/location.ts';
import { pythonExitCode, type Backend, type Child } from './backend.ts';
import { ProcessError } from '../errors.ts';
import { notCloneable } from './backend.ts';

export const forkBackend: Backend = {
  name: 'process',
  spawn(message: StartMessage): Child {
    // Serialized first: what cannot cross fails start() with nothing spawned.
    let start: Uint8Array[];
    try {
      start = encodeStart(message);
    } catch (error) {
      throw notCloneable(message.name, error, 'a SharedArrayBuffer cannot cross to another process: use SharedArray or SharedMemory');
    }
    // Loaded on first use, so that importing multiproc (in every child) does not load child_process.
    const { spawn } = process.getBuiltinModule('node:child_process');
    const child = spawn(process.execPath, [...forkExecArgv(), fileURLToPath(bootstrapUrl())], {
      // stdin is /dev/null as in Python's children; stdout and stderr are the parent's. The start
      // message has a pipe of its own (START_FD), which the child reads synchronously as it boots.
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    });
    if (child.pid === undefined) {
      throw new ProcessError(`Process.start(): the OS did not start a process for ${message.name}. Check the limits on processes (ulimit -u) and memory.`, {
        code: 'ERR_MP_SPAWN_FAILED',
        processName: message.name,
      });
    }
    const pipe = child.stdio[START_FD] as Duplex & { unref?: () => void };
    // A child that died before it read its message: its exit says so.
    pipe.on('error', () => {});
    for (const chunk of start) pipe.write(chunk);
    pipe.end();
    const forked = new ForkedChild(child, child.pid, takenOver(pipe));
    // A daemonic child is terminated at exit: no need to wait for it to start.
    if (!message.daemon) watchStart(message.name, forked, pipe);
    return forked;
  },
};

// True once the child writes TAKING_OVER back; false if its end of the pipe closes first (it
// died, or ended before its args were rebuilt). Read without keeping this process alive.
function takenOver(pipe: Duplex & { unref?: () => void }): Promise<boolean> {
  return new Promise((resolve) => {
    pipe.on('data', (bytes: Buffer) => {
      if (bytes.includes(TAKING_OVER)) resolve(true);
    });
    pipe.once('close', () => resolve(false));
    pipe.unref?.();
  });
}

// A child rebuilds the objects in its args (a Queue, a Lock) from shared memory that the program
// unlinks when its main process exits (resource-tracker.ts). A child still starting then would
// fail to attach it (ENOENT), so an exit (process.exit() right after start(), an uncaught error)
// first waits, a bounded time, for each non-daemonic child to close its start pipe, which it does
// once they are rebuilt (bootstrap/boot.ts). Python's exit waits longer: it joins such children.

/** How long an exit waits for its children still starting. */
const START_WAIT_MS = 10_000;

interface Starting {
  readonly name: string;
  readonly pid: number;
  readonly pipe: Writable;
  /** What the child's end of the start pipe is, in /proc: the child has closed it when that changes. */
  readonly end: string;
}

const starting = new Set<Starting>();
let waitingAtExit = false;

function watchStart(name: string, child: ForkedChild, pipe: Writable): void {
  let end: string;
  try {
    end = readlinkSync(`/proc/${child.pid}/fd/${START_FD}`);
  } catch {
    return; // no /proc, or the child is gone already: nothing to wait for
  }
  const entry: Starting = { name, pid: child.pid, pipe, end };
  starting.add(entry);
  void child.exited.then(() => starting.delete(entry));
  if (waitingAtExit) return;
  waitingAtExit = true;
  atExit(ExitStep.Flush, waitForStartingChildren);
}

function waitForStartingChildren(): void {
  const deadline = monotonicMs() + START_WAIT_MS;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (const child of starting) {
    while (stillStarting(child)) {
      if (monotonicMs() >= deadline) {
        writeSync(2, `multiproc: ${child.name} (pid ${child.pid}) had not started ${START_WAIT_MS / 1000} s after its parent (pid ${process.pid}) began to exit; the shared memory of its args is released now, and it may fail.\n`);
        return;
      }
      Atomics.wait(nap, 0, 0, 1);
    }
  }
}

// Only a start message the child can still read whole is waited for: the bytes of one larger than
// the pipe's buffer that are not in the pipe yet end with this process.
function stillStarting({ pid, pipe, end }: Starting): boolean {
  if (pipe.writableLength > 0) return false;
  try {
    return readlinkSync(`/proc/${pid}/fd/${START_FD}`) === end;
  } catch {
    return false; // exited (or a zombie: it has no fds)
  }
}

/**
 * The parent's execArgv as fork() passes it on: without `-e <code>` / `-p <code>`, which would run
 * the parent's code again in the child before the bootstrap.
 */
function forkExecArgv(): string[] {
  const code = (process as { _eval?: unknown })._eval;
  const at = typeof code === 'string' ? process.execArgv.lastIndexOf(code) : -1;
  const execArgv = at > 0 ? process.execArgv.toSpliced(at - 1, 2) : process.execArgv;
  return execArgv.filter((arg) => !/^--(eval|print)=/.test(arg));
}

class ForkedChild implements Child {
  readonly #child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  readonly startAbandoned: Promise<boolean>;
  #exitCode: number | null = null;

  constructor(child: ChildProcess, pid: number, takenOver: Promise<boolean>) {
    this.#child = child;
    this.pid = pid;
    this.startAbandoned = takenOver.then((taken) => !taken);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitCode = pythonExitCode(code, signal, constants.signals);
        resolve();
      });
    });
    // An 'error' after start (a failed send to a child that already died) changes nothing: the
    // 'exit' event reports the child's end. Without a listener it would crash the parent.
    child.on('error', () => {});
  }

  get ident(): number {
    return this.pid;
  }

  get exitCode(): number | null {
    return this.#exitCode;
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (this.#exitCode === null) this.#child.kill(signal);
  }

  treeRoots(): number[] {
    return this.#exitCode === null ? [this.pid] : [];
  }

  setRef(ref: boolean): void {
    if (ref) this.#child.ref();
    else this.#child.unref();
  }
}
