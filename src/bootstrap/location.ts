// Where the child bootstrap lives. A library run from src/ through tsx starts src/bootstrap/child.ts.
// The built one has two (scripts/build.ts): dist/bootstrap/child.cjs requires the library, which
// spares the child Node's asynchronous module loader (src/internal/import-module.ts), and
// dist/bootstrap/child.js imports it, for a process run with module hooks (--import tsx, say:
// tsx's require() hook would load a second copy of the library). The path goes up one folder
// first: this code is src/bootstrap/location.ts, or part of the built dist/internal/multiproc.js,
// and both are one folder below the library's root.

import { extname } from 'node:path';
import { requireLoadsModules } from '../internal/import-module.ts';

export function bootstrapUrl(): URL {
  const source = extname(new URL(import.meta.url).pathname) === '.ts';
  return new URL(source ? '../bootstrap/child.ts' : requireLoadsModules ? '../bootstrap/child.cjs' : '../bootstrap/child.js', import.meta.url);
}
