// Where the child bootstrap lives: beside this file, with this file's own extension, so that a
// library run from src/ through tsx starts src/bootstrap/child.ts and the built one dist/.../child.js.

import { extname } from 'node:path';

export function bootstrapUrl(): URL {
  const extension = extname(new URL(import.meta.url).pathname);
  return new URL(`./child${extension}`, import.meta.url);
}
