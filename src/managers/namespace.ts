// Python's multiprocessing.managers.Namespace: an object whose attributes are its own properties,
// here in this process. A manager serves one through `m.Namespace(init)` (a NamespaceProxy);
// a Namespace can be its start value, and `new Namespace(await proxy.copy())` brings it back.

import { inspect } from 'node:util';

export class Namespace {
  [attribute: string]: unknown;

  constructor(attributes: Record<string, unknown> = {}) {
    Object.assign(this, attributes);
  }

  /** As Python's repr: `Namespace(a=1, b='x')`. */
  toString(): string {
    const attributes = Object.entries(this).map(([name, value]) => `${name}=${inspect(value)}`);
    return `Namespace(${attributes.join(', ')})`;
  }
}
