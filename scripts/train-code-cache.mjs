// Run by scripts/build.ts on the built dist/: makes the library's code cache (see
// scripts/library-module.js) in a pool worker thread, after its first task, so that the cache
// holds the code a child runs first: its bootstrap, the pool's worker loop, the pipe, the codec.

import { getContext, isMain } from '../dist/index.js';
import { writeCodeCache } from '../dist/internal/multiproc.js';

export function square(x) {
  return x * x;
}

export function writeCache() {
  writeCodeCache();
}

if (isMain(import.meta)) {
  const { Pool } = getContext('thread');
  const pool = new Pool(1);
  try {
    const here = import.meta.url;
    if ((await pool.apply({ module: here, name: 'square' }, [3])) !== 9) throw new Error('the pool worker returned a wrong square');
    await pool.apply({ module: here, name: 'writeCache' });
  } finally {
    pool.close();
    await pool.join();
  }
}
