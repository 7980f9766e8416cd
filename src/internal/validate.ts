// Validation at the edge of the public API: messages say what was expected, what came, and where.

import { describe, invalidArgument, outOfRange } from '../errors.ts';

/** A wait's options: Python's `timeout` (here milliseconds) and an AbortSignal. */
export interface WaitOptions {
  /** Milliseconds to wait at most; `undefined` waits for ever. */
  timeout?: number | undefined;
  /** Aborts the wait (the call rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
}

/** Normalizes `wait(timeout)` and `wait({ timeout, signal })` into options. */
export function waitOptions(where: string, value: number | WaitOptions | undefined | null): WaitOptions {
  const options: WaitOptions = typeof value === 'number' || value == null ? { timeout: value ?? undefined } : value;
  if (typeof options !== 'object') throw invalidArgument(`${where}: expected a timeout in milliseconds or { timeout, signal }, got ${describe(value)}.`);
  const timeout = options.timeout === undefined ? undefined : timeoutMs(where, options.timeout);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw invalidArgument(`${where}: expected \`signal\` to be an AbortSignal, got ${describe(options.signal)}.`);
  }
  return timeout === options.timeout ? options : { ...options, timeout };
}

/**
 * For a wait that may end at once (a free lock): a rejection for a bad `timeout`, undefined for a
 * good one, so that a bad timeout is refused whatever the object's state.
 */
export function refusedWait(where: string, timeout: unknown): Promise<never> | undefined {
  if (timeout === undefined) return undefined;
  try {
    waitOptions(where, timeout as number | WaitOptions);
    return undefined;
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The longest timer Node can set; a longer timeout waits for ever, as it would in practice. */
export const MAX_TIMER_MS = 0x7fffffff;

/**
 * setTimeout() for a timeout in ms, none for a timeout past the longest timer (Node would fire
 * that one after 1 ms, with a warning): such a wait is for ever, as it would be in practice.
 */
export function timerFor(timeout: number | undefined, fire: () => void): NodeJS.Timeout | undefined {
  return timeout === undefined || timeout > MAX_TIMER_MS ? undefined : setTimeout(fire, timeout);
}

// A negative timeout waits not at all, as in Python (poll(-1) is false, join(-1) returns at once,
// get(True, -1) raises Empty): a deadline computed as `deadline - now` may have passed. NaN is a
// RangeError, anything but a number a TypeError.
export function timeoutMs(where: string, value: unknown): number {
  if (typeof value === 'number' && value >= 0) return value;
  const message = `${where}: expected \`timeout\` to be a number of milliseconds, got ${describe(value)}.`;
  if (typeof value !== 'number') throw invalidArgument(message);
  if (Number.isNaN(value)) throw outOfRange(message);
  return 0;
}

export function optionalString(where: string, key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidArgument(`${where}: expected \`${key}\` to be a string, got ${describe(value)}.`);
  return value;
}

export function optionalBoolean(where: string, key: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw invalidArgument(`${where}: expected \`${key}\` to be a boolean, got ${describe(value)}.`);
  return value;
}

/**
 * Resolves when `event` settles, or after `timeout` ms (to `false`), or rejects when `signal`
 * aborts. The timer keeps the event loop alive, as a blocking wait in Python keeps the process.
 */
export function waitFor(event: Promise<void>, options: WaitOptions): Promise<boolean> {
  let { timeout } = options;
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (timeout !== undefined && timeout > MAX_TIMER_MS) timeout = undefined;
  if (timeout === undefined && !signal) return event.then(() => true);
  return new Promise<boolean>((resolve, reject) => {
    const timer = timerFor(timeout, () => finish(() => resolve(false)));
    const onAbort = () => finish(() => reject(signal?.reason));
    function finish(settle: () => void) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    event.then(() => finish(() => resolve(true)), (error: unknown) => finish(() => reject(error)));
  });
}

/**
 * Refuses an acquire()'s `block` that is not a boolean: a timeout given first (`acquire(100)`,
 * `acquire({ timeout: 100 })`) was taken for `block`, true, and waited for ever.
 */
export function notABlock(where: string, block: unknown): TypeError {
  return invalidArgument(`${where}: expected \`block\` to be true or false, got ${describe(block)}. It comes first, as in Python's acquire(block, timeout): to wait at most 100 ms, acquire(true, 100) or acquire(true, { timeout: 100 }).`);
}

/**
 * Refuses an option that `where` does not take, as Python refuses an unexpected keyword argument:
 * a misspelt one would be dropped silently (`authKey` for `authkey` left a Listener without
 * authentication). `options` is known to be an object.
 */
export function knownOptions(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const hint = key === 'kwargs' || key === 'kwds' ? ' JavaScript has no keyword arguments: pass the values in `args`, or one object there.'
      : closestName(key, known) ? ` Did you mean \`${closestName(key, known)}\`?` : '';
    throw invalidArgument(`${where}: unknown option \`${key}\`.${hint} It takes ${known.map((name) => `\`${name}\``).join(', ')}.`);
  }
}

/** The name in `names` that `key` is most likely a slip of (its case, or up to two letters off). */
function closestName(key: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const distance = name.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, name);
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}
