// Which backend `new Process()` uses when its class does not name one: Python's start method.
// It can be set once, before or at the first use, as DefaultContext.set_start_method allows.

import { ProcessError, invalidArgument, describe } from '../errors.ts';
import type { Backend, BackendName } from '../backends/backend.ts';
import { forkBackend } from '../backends/fork.ts';
import { threadBackend } from '../backends/thread.ts';

const backends: Record<BackendName, Backend> = { process: forkBackend, thread: threadBackend };

let chosen: BackendName | undefined;

export function startMethods(): BackendName[] {
  return ['process', 'thread'];
}

export function backendNamed(where: string, name: unknown): Backend {
  if (name !== 'process' && name !== 'thread') {
    // Python's three start methods all make a process; Node has one way to start one.
    const python = name === 'spawn' || name === 'fork' || name === 'forkserver' ? ` Python's '${name}' is 'process' here (a new Node process, started as spawn starts one).` : '';
    throw invalidArgument(`${where}: expected a start method of ${startMethods().map((m) => `'${m}'`).join(' or ')}, got ${describe(name)}.${python}`, 'ERR_MP_UNKNOWN_START_METHOD');
  }
  return backends[name];
}

/** The start method in use; reading it fixes it, as get_start_method() does in Python. */
export function currentStartMethod(fix = true): BackendName | undefined {
  if (fix) chosen ??= 'process';
  return chosen;
}

export function chooseStartMethod(name: unknown, force: boolean): void {
  const backend = backendNamed('setStartMethod()', name);
  if (chosen !== undefined && !force) {
    throw new ProcessError(
      `setStartMethod(): the start method is already '${chosen}' in process ${process.pid}. ` +
        `Set it once, before starting any process, or pass { force: true }, or use getContext('${backend.name}') for a second backend.`,
      { code: 'ERR_MP_CONTEXT_ALREADY_SET' },
    );
  }
  chosen = backend.name;
}
