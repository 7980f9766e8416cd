// One test body, every backend (CPython's ALLOWED_TYPES): forEachBackend(ctx => it(...)).

import { describe } from 'node:test';
import { getContext, type Context, type StartMethod } from '../../src/index.ts';

export const backends: StartMethod[] = ['process', 'thread'];

export function forEachBackend(body: (context: Context, name: StartMethod) => void): void {
  for (const name of backends) {
    describe(`backend: ${name}`, () => body(getContext(name), name));
  }
}
