// A short tour of what multiproc has beyond the seed: who am I (currentProcess/parentProcess), the
// thread backend, a target that throws, and ending a whole process tree.
//
// Run it: node --import tsx examples/tour.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { Process, currentProcess, descendants, getContext, isMain, killTree, parentProcess } from 'multiproc';

/** Prints how the process (or thread) running it sees itself and its parent. */
export function whoAmI(): void {
  const me = currentProcess();
  const parent = parentProcess();
  console.log(`  in ${me.name}: process.pid ${process.pid}, ident ${me.ident}; parent ${parent?.name} (pid ${parent?.pid})`);
}

/** Fails: the child prints the stack on its stderr (Python's traceback) and exits with code 1. */
export function fail(): never {
  throw new Error('something went wrong in the child');
}

/** Runs until it is terminated. */
export function runForever(): void {
  setInterval(() => {}, 1000);
}

/** Starts two children of its own, then runs until it is terminated: a process tree of three. */
export function startTwoChildren(): void {
  for (let i = 0; i < 2; i++) new Process({ target: runForever }).start();
  runForever();
}

/** Resolves once `pid` has `count` descendants (children starting take a moment). */
async function untilDescendants(pid: number, count: number): Promise<number[]> {
  for (;;) {
    const found = descendants(pid);
    if (found.length >= count) return found;
    await sleep(20);
  }
}

if (isMain(import.meta)) {
  console.log('-- currentProcess() and parentProcess()');
  console.log(`  in the main process: ${currentProcess().name}, pid ${process.pid}; parentProcess() is ${parentProcess()}`);
  const child = new Process({ target: whoAmI });
  child.start();
  await child.join();

  console.log("-- the thread backend: getContext('thread') gives the same API over worker threads");
  const threads = getContext('thread');
  const thread = new threads.Process({ target: whoAmI });
  thread.start();
  await thread.join();
  console.log(`  a thread's pid is its parent's (${thread.pid}); its ident is the thread id (${thread.ident}); exitCode ${thread.exitCode}`);

  console.log('-- a target that throws: its stack goes to the child\'s stderr, and exitCode is 1');
  const failing = new Process({ target: fail });
  failing.start();
  await failing.join();
  console.log(`  ${failing.name} exitCode: ${failing.exitCode}`);

  console.log('-- process trees: killTree(pid) ends a process and all its descendants');
  const tree = new Process({ target: startTwoChildren });
  tree.start();
  const grandchildren = await untilDescendants(tree.pid!, 2);
  console.log(`  ${tree.name} (pid ${tree.pid}) started 2 children: ${grandchildren.join(', ')}`);
  const ended = await killTree(tree.pid!);
  await tree.join();
  console.log(`  killTree() ended ${ended.length} processes; ${tree.name} exitCode: ${tree.exitCode}`);

  console.log('-- or p.terminate({ tree: true }): SIGTERM to the process and its descendants');
  const tree2 = new Process({ target: startTwoChildren });
  tree2.start();
  const more = await untilDescendants(tree2.pid!, 2);
  tree2.terminate({ tree: true });
  await tree2.join();
  console.log(`  sent SIGTERM to ${tree2.name} and its children ${more.join(', ')}; exitCode: ${tree2.exitCode}`);
}
