// What this process or thread does as it exits, in the order of Python's exit function: daemonic
// children are terminated first, then what this side put or sent is flushed (Python joins its
// queues' feeder threads then), then its ends, holds and mappings are let go. One 'exit' listener
// runs the steps in that order, whenever each was registered.

import { runtime } from './runtime.ts';

export const enum ExitStep {
  TerminateDaemons = 0,
  Flush = 1,
  LetGo = 2,
}

const steps: (() => void)[][] = [[], [], []];
let listening = false;

/** Runs `work` at this thread's exit, in `step`'s turn (after the steps before it, whoever registered first). */
export function atExit(step: ExitStep, work: () => void): void {
  (steps[step] as (() => void)[]).push(work);
  if (listening) return;
  listening = true;
  process.once('exit', runSteps);
}

function runSteps(): void {
  for (const step of steps) for (const work of step) work();
}

/** The daemonic children this exit is terminating: a flush does not wait for them to read. */
export const daemonsEnding = new Set<number>();

const beforeSignalDeath = new Set<() => void>();
let signalsWatched = false;

/**
 * Runs `work` when SIGINT, SIGTERM or SIGHUP is about to kill this process: their default action
 * kills it without its 'exit' event, so what must not outlive it (shared-memory segments, socket
 * files) is removed first, and the process then dies of the same signal. Only when no one else
 * handles the signal: a program with a handler of its own decides when to exit (and its exit runs
 * the steps above). Signals reach only a process's main thread. `work` given again is run once.
 */
export function atSignalDeath(work: () => void): void {
  beforeSignalDeath.add(work);
  if (signalsWatched || runtime().role === 'thread-child') return;
  signalsWatched = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, function onSignal() {
      if (process.listenerCount(signal) > 1) return;
      for (const each of beforeSignalDeath) each();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    });
  }
}
