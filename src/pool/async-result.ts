// AsyncResult (Python's multiprocessing.pool.AsyncResult): the future of a pool call.

import { ProcessError, TimeoutError } from '../errors.ts';
import { waitFor, waitOptions, type WaitOptions } from '../internal/validate.ts';
import { thrownToCaller } from '../internal/remote-error.ts';

export class AsyncResult<T> {
  // Made only when someone waits before the result is ready: a pool of 20,000 tiny tasks keeps
  // 20,000 of these alive at once, and each object less is less for the garbage collector to copy.
  #whenSettled: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #state: 'pending' | 'fulfilled' | 'rejected' = 'pending';
  #value: T | undefined;
  #error: unknown;

  /** @internal Pool creates AsyncResults. */
  constructor() {}

  /** The result; rejects with the task's error, or with TimeoutError if `timeout` ms pass first. */
  async get(timeout?: number | WaitOptions): Promise<T> {
    if (!(await this.#settled(waitOptions('AsyncResult.get()', timeout)))) {
      throw new TimeoutError('AsyncResult.get(): the result was not ready before the timeout.');
    }
    if (this.#state === 'rejected') throw thrownToCaller(this.#error, AsyncResult.prototype.get);
    return this.#value as T;
  }

  /** Resolves when the result is ready, or after `timeout` ms. */
  async wait(timeout?: number | WaitOptions): Promise<void> {
    await this.#settled(waitOptions('AsyncResult.wait()', timeout));
  }

  ready(): boolean {
    return this.#state !== 'pending';
  }

  /** Whether the call succeeded; throws if it is not ready yet, as Python does. */
  successful(): boolean {
    if (this.#state === 'pending') throw new ProcessError('AsyncResult.successful(): the result is not ready yet. Check ready() first, or await wait().', { code: 'ERR_MP_NOT_READY' });
    return this.#state === 'fulfilled';
  }

  /** @internal */
  fulfill(value: T): void {
    if (this.#state !== 'pending') return;
    this.#state = 'fulfilled';
    this.#value = value;
    this.#resolve?.();
  }

  /** @internal */
  reject(error: unknown): void {
    if (this.#state !== 'pending') return;
    this.#state = 'rejected';
    this.#error = error;
    this.#resolve?.();
  }

  /** True once ready; false if the timeout passed first (an aborted signal rejects, ready or not). */
  #settled(options: WaitOptions): boolean | Promise<boolean> {
    if (this.#state !== 'pending' && !options.signal?.aborted) return true;
    this.#whenSettled ??= this.#state === 'pending' ? new Promise((resolve) => (this.#resolve = resolve)) : Promise.resolve();
    return waitFor(this.#whenSettled, options);
  }
}
