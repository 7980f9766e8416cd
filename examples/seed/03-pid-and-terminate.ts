// The seed's last process snippet made into a program: os.getppid() and os.getpid() (here
// process.ppid and process.pid), p.is_alive() (isAlive()) and p.terminate().
//
// Run it: node --import tsx examples/seed/03-pid-and-terminate.ts

import { Process, isMain } from 'multiproc';

/** Prints who runs it: Python's `print(title, os.getpid(), os.getppid())`. */
export function info(title: string): void {
  console.log(`${title}: pid ${process.pid}, ppid ${process.ppid}`);
}

/** Runs until it is terminated (a timer keeps a Node process alive, as `while True: sleep(1)` does). */
export function runForever(): void {
  setInterval(() => {}, 1000);
}

if (isMain(import.meta)) {
  info('main process');

  // A child's ppid is the pid of the process that started it.
  const child = new Process({ target: info, args: ['child process'] });
  child.start();
  await child.join();

  const p = new Process({ target: runForever });
  p.start();
  console.log(`${p.name} started, pid ${p.pid}`);
  console.log(`isAlive(): ${p.isAlive()}`); // true from start() until the process exits
  p.terminate(); // SIGTERM, as Python's terminate() on POSIX
  await p.join(); // terminate() only sends the signal: join() waits until the process has ended
  console.log(`after terminate() and join(): isAlive(): ${p.isAlive()}`);
  console.log(`exitCode: ${p.exitCode}`); // -15: ended by signal 15 (SIGTERM), as in Python
}
