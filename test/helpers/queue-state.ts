// A Queue's shared state (its words, rings and locks), which it keeps under
// Symbol(multiproc.queueState): for tests that inject faults through it or check its memory.

import assert from 'node:assert/strict';
import type { Lock, Queue } from '../../src/index.ts';

export interface QueueState {
  writeLock: Lock;
  firstRing: { segment: string; offset: number };
}

export function queueStateOf(queue: Queue<unknown>): QueueState {
  const key = Object.getOwnPropertySymbols(queue).find((symbol) => symbol.description === 'multiproc.queueState');
  assert.ok(key, 'the Queue keeps its shared state under Symbol(multiproc.queueState)');
  return (queue as unknown as Record<symbol, QueueState>)[key]!;
}
