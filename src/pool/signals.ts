// The AbortSignals of a pool's tasks: one 'abort' listener per signal, however many tasks it
// cancels. A listener per task put 11 on the signal of a map of 11 chunks (or of 11 calls sharing
// one signal), and Node printed MaxListenersExceededWarning, a leak warning, for a normal use.

export class SignalWatch<T> {
  readonly #watched = new Map<AbortSignal, { tasks: Set<T>; listener: () => void }>();
  readonly #onAbort: (task: T, reason: unknown) => void;

  constructor(onAbort: (task: T, reason: unknown) => void) {
    this.#onAbort = onAbort;
  }

  /** `task` is aborted (onAbort) when `signal` fires, until delete(). */
  add(signal: AbortSignal, task: T): void {
    let entry = this.#watched.get(signal);
    if (!entry) {
      const tasks = new Set<T>();
      const listener = () => {
        this.#watched.delete(signal);
        for (const each of tasks) this.#onAbort(each, signal.reason);
      };
      entry = { tasks, listener };
      this.#watched.set(signal, entry);
      signal.addEventListener('abort', listener, { once: true });
    }
    entry.tasks.add(task);
  }

  /** The task is settled: its signal no longer concerns it, and a signal that concerns no task keeps no listener. */
  delete(signal: AbortSignal, task: T): void {
    const entry = this.#watched.get(signal);
    if (!entry?.tasks.delete(task) || entry.tasks.size > 0) return;
    this.#watched.delete(signal);
    signal.removeEventListener('abort', entry.listener);
  }
}
