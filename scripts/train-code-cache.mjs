// Makes the library's code cache (see scripts/library-loader.cjs) in a pool worker thread, after
// its first task, so that the cache holds the code a child runs first: its bootstrap, the pool's
// worker loop, the pipe, the codec. scripts/build.ts runs it on the dist/ it built, and a failure
// fails the build. `npm install` runs it too with --if-built (package.json "install"), so that an
// installed package gets a cache made by the Node that runs it: there it skips a tree without
// dist/ (a clone before its build), and a failure only warns (V8 then compiles as usual).

import { existsSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const library = new URL('../dist/internal/multiproc.js', import.meta.url);

export function square(x) {
  return x * x;
}

export async function writeCache() {
  (await import(library.href)).writeCodeCache();
}

async function train() {
  const { getContext } = await import(new URL('../dist/index.js', import.meta.url).href);
  const pool = new (getContext('thread').Pool)(1);
  try {
    const here = import.meta.url;
    if ((await pool.apply({ module: here, name: 'square' }, [3])) !== 9) throw new Error('the pool worker returned a wrong square');
    await pool.apply({ module: here, name: 'writeCache' });
  } finally {
    pool.close();
    await pool.join();
  }
}

// Run as a program: in the main thread. The pool worker imports this module only for its tasks.
if (isMainThread) {
  const atInstall = process.argv.includes('--if-built');
  if (!atInstall || existsSync(library)) {
    try {
      await train();
    } catch (error) {
      if (!atInstall) throw error;
      console.warn(`multiproc: could not make the code cache (${error?.message ?? error}); children will compile the library as they start (about 10 ms each).`);
    }
  }
}
