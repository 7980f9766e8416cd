// What this process or thread does as it exits, in the order of Python's exit function: daemonic
// children are terminated first, then what this side put or sent is flushed (Python joins its
// queues' feeder threads then), then its ends, holds and mappings are let go. One 'exit' listener
// runs the steps in that order, whenever each was registered.

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
