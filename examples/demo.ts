// `npm run demo`: runs the seed tutorial's process programs, then a short tour, each as its own
// program (as you would run it: `node --import tsx <file>`), with a header before each.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const programs: [title: string, file: string][] = [
  ['方法一: three processes by function', 'seed/01-process-by-function.ts'],
  ['方法二: three processes by subclass', 'seed/02-process-by-subclass.ts'],
  ['os.getpid(), os.getppid(), is_alive(), terminate()', 'seed/03-pid-and-terminate.ts'],
  ['进程同步: ten processes print in turn under a Lock', 'seed/04-lock.ts'],
  ['进程间通信 方案一: a Queue between two processes', 'seed/05-queue.ts'],
  ['进程间通信 方案二: a duplex Pipe', 'seed/06-pipe.ts'],
  ['进程池: 100 tasks on Pool(5), results to a callback', 'seed/07-pool.ts'],
  ['进程间通信 方案二: ten processes share a Manager\'s dict and list', 'seed/08-manager.ts'],
  ['tour: the thread backend, a failing target, process trees, partial(), a socket handed to a worker, the log', 'tour.ts'],
];

let failed = 0;
for (const [title, file] of programs) {
  const path = fileURLToPath(new URL(file, import.meta.url));
  console.log(`\n=== ${title} (${relative(process.cwd(), path)}) ===`);
  // The same execArgv (`--import tsx`), so the program's .ts runs as it does here.
  const child = spawn(process.execPath, [...process.execArgv, path], { stdio: 'inherit' });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) {
    failed++;
    console.error(`${file} failed: ${signal ? `killed by ${signal}` : `exit code ${code}`}`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
