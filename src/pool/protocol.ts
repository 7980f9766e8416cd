// Messages between a Pool and its workers, as data.

import type { ModuleRef } from '../internal/function-ref.ts';
import type { ErrorData } from '../internal/remote-error.ts';

/** Run `fn` on each of `items` (spread as argument lists when `star`); reply with all results or the first error. */
export interface TaskMessage {
  type: 'task';
  id: number;
  fn: ModuleRef;
  items: unknown[];
  star: boolean;
}

export interface AbortMessage {
  type: 'abort';
  id: number;
  reason: string;
}

export interface StopMessage {
  type: 'stop';
}

export type ToWorker = TaskMessage | AbortMessage | StopMessage;

export interface ResultMessage {
  type: 'result';
  id: number;
  ok: true;
  results: unknown[];
  rss: number;
}

export interface FailureMessage {
  type: 'result';
  id: number;
  ok: false;
  error: ErrorData;
  rss: number;
}

export interface ReadyMessage {
  type: 'ready';
}

export type FromWorker = ResultMessage | FailureMessage | ReadyMessage;
