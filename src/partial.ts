// Python's functools.partial for functions that cross processes. An arrow that closes over a value
// (`(x) => scale(k, x)`) cannot be sent: functions cross by reference, and a closure has no module
// export to name. partial(scale, k) can: it crosses as scale's reference plus k, and the other side
// calls scale(k, ...its own arguments), as a pickled partial does in Python.

import { describe, invalidArgument } from './errors.ts';
import { definePartial, referenceOf } from './internal/function-ref.ts';
import { checkSendable } from './reduction.ts';

/**
 * `fn` with its leading arguments bound to `bound`: callable here, and accepted wherever a
 * function crosses to another process or thread (a Process target, a Pool task function, an
 * initializer, a manager's register() factory, a Barrier action). `fn` must be exported by its
 * module, and `bound` must be values that can cross (as Process args); both are checked here, at
 * once. A partial of a partial binds the arguments of both, as in Python. A partial of a class
 * constructs it (`partial(Account, 'ada')(100)` is `new Account('ada', 100)`), as a class is called
 * in Python.
 *
 * ```ts
 * export function scale(factor: number, x: number) { return factor * x; }
 * await pool.map(partial(scale, 10), [1, 2, 3]);   // [10, 20, 30]
 * ```
 */
export function partial<B extends unknown[], R extends unknown[], T>(fn: (...args: [...B, ...R]) => T, ...bound: B): (...rest: R) => T;
export function partial<B extends unknown[], R extends unknown[], T>(Class: new (...args: [...B, ...R]) => T, ...bound: B): (...rest: R) => T;
export function partial(fn: Function, ...bound: unknown[]): (...rest: unknown[]) => unknown {
  if (typeof fn !== 'function') {
    const hint = typeof fn === 'object' && fn !== null ? ' For a { module, name } reference, put the arguments in its `args`: { module, name, args: [...] }.' : '';
    throw invalidArgument(`partial(): expected a function exported by its module, got ${describe(fn)}.${hint}`);
  }
  const reference = referenceOf(fn, `partial(${fn.name || 'function'})`);
  checkSendable(bound, `partial(${reference.name}): its bound args`);
  const isClass = /^class[\s{]/.test(Function.prototype.toString.call(fn));
  const name = `partial ${fn.name}`;
  const applied = {
    [name]: (...rest: unknown[]): unknown => (isClass ? Reflect.construct(fn, [...bound, ...rest]) : fn(...bound, ...rest)),
  }[name] as (...rest: unknown[]) => unknown;
  definePartial(applied, fn, bound);
  return applied;
}
