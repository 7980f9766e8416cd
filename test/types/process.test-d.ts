// Type tests, checked by `npm run typecheck` (tsc): every @ts-expect-error must be an error.
import { Process, getContext, partial, type Target } from '../../src/index.ts';
import { Process as DummyProcess, Pool as DummyPool, Manager as DummyManager } from '../../src/dummy.ts';
import type { SyncManager } from '../../src/managers/index.ts';

export function greet(name: string, times: number): void {
  void name;
  void times;
}

// Arguments are checked against the target's parameters.
new Process({ target: greet, args: ['alvin', 2] });
// @ts-expect-error: a number where the target takes a string
new Process({ target: greet, args: [1, 2] });
// @ts-expect-error: a missing argument
new Process({ target: greet, args: ['alvin'] });
// @ts-expect-error: args must be an array
new Process({ target: greet, args: 'alvin' });

// The explicit reference form takes any arguments.
new Process({ target: { module: import.meta.url, name: 'greet' }, args: [1, 'x'] });

// A context's Process is the same class, generics and all.
const ThreadProcess = getContext('thread').Process;
new ThreadProcess({ target: greet, args: ['alvin', 1] });
// @ts-expect-error: checked there too
new ThreadProcess({ target: greet, args: [1] });

// Subclasses override run() and keep the public surface.
export class MyProcess extends Process {
  override async run(): Promise<void> {}
}
const p: Process = new MyProcess();
const code: number | null = p.exitCode;
const pid: number | undefined = p.pid;
const joined: Promise<void> = p.join(1500);
void [code, pid, joined];
// @ts-expect-error: terminate() does not wait
void p.terminate().then;

const target: Target<[string, number]> = greet;
void target;

// multiproc/dummy's Process and Pool are types as well as classes.
export const dummyProcess: DummyProcess<[string, number]> = new DummyProcess({ target: greet, args: ['alvin', 1] });
export const dummyPool: (n: number) => DummyPool = (n) => new DummyPool(n);
export const dummyManager: () => Promise<SyncManager> = DummyManager;

// partial(): the bound arguments are checked against the leading parameters, and the rest remain.
export function scaleBy(factor: number, x: number): number {
  return factor * x;
}
const byTen: (x: number) => number = partial(scaleBy, 10);
new Process({ target: partial(greet, 'alvin'), args: [2] });
// @ts-expect-error: the partial's remaining parameter is a number
new Process({ target: partial(greet, 'alvin'), args: ['two'] });
// @ts-expect-error: a string bound where the function takes a number
partial(scaleBy, 'ten');
// @ts-expect-error: the remaining parameter is a number
byTen('x');
export class Greeter {
  constructor(readonly name: string, readonly times: number) {}
}
const greeter: Greeter = partial(Greeter, 'ada')(3);
void greeter;
