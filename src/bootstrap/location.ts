// Where the child bootstrap lives, with this file's own extension, so that a library run from src/
// through tsx starts src/bootstrap/child.ts and the built one dist/bootstrap/child.js. The path
// goes up one folder first: this code is src/bootstrap/location.ts, or part of the built
// dist/internal/multiproc.js (scripts/build.ts), and both are one folder below the library's root.

import { extname } from 'node:path';

export function bootstrapUrl(): URL {
  const extension = extname(new URL(import.meta.url).pathname);
  return new URL(`../bootstrap/child${extension}`, import.meta.url);
}
