// The `process` backend: a new Node process (child_process.spawn) running the one bootstrap file,
// with the parent's execArgv as fork() would pass it, so that a loader such as tsx works in the
// child too. Not fork() itself: its IPC channel costs every child 7-8 ms of its start (Node loads
// streams, net, dgram and child_process to set it up), and nothing travels on it. The start
// message has a pipe of its own; the parent's death reaches a child by PR_SET_PDEATHSIG (boot.ts).

import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { START_FD, encodeStart, type StartMessage } from '../internal/protocol.ts';
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
    const pipe = child.stdio[START_FD] as Writable;
    // A child that died before it read its message: its exit says so.
    pipe.on('error', () => {});
    for (const chunk of start) pipe.write(chunk);
    pipe.end();
    return new ForkedChild(child, child.pid);
  },
};

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
  #exitCode: number | null = null;

  constructor(child: ChildProcess, pid: number) {
    this.#child = child;
    this.pid = pid;
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
