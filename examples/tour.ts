// A short tour of what multiproc has beyond the seed: who am I (currentProcess/parentProcess), the
// thread backend, a target that throws, ending a whole process tree, partial(), a server that
// hands its connections to a worker, and the library's log.
//
// Run it: node --import tsx examples/tour.ts

import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, Process, currentProcess, descendants, getContext, isMain, killTree, logToStderr, parentProcess, partial } from 'multiproc';
import { Client, Listener, type Connection } from 'multiproc/connection';

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

/** Scales `x` by `factor`: partial(scale, 10) binds the factor. */
export function scale(factor: number, x: number): number {
  return factor * x;
}

/** Answers each message of a connection handed to it, in capitals, until the client closes it. */
export async function shout(conn: Connection<string>): Promise<void> {
  for (;;) {
    let message: string;
    try {
      message = await conn.recv();
    } catch {
      break; // the client closed it
    }
    conn.send(`${message.toUpperCase()} (from ${currentProcess().name}, pid ${process.pid})`);
  }
  conn.close();
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

  console.log("-- partial(f, ...args): Python's functools.partial, for functions that cross to workers");
  {
    await using pool = new Pool(2);
    console.log(`  pool.map(partial(scale, 10), [1, 2, 3]) -> ${JSON.stringify(await pool.map(partial(scale, 10), [1, 2, 3]))}`);
  }

  console.log('-- a server accepts a connection and hands it to a worker process (the socket moves there)');
  const listener = new Listener({ address: { host: '127.0.0.1', port: 0 }, authkey: 'tour' });
  const [accepted, client] = await Promise.all([listener.accept<string>(), Client<string>(listener.address, { authkey: 'tour' })]);
  const worker = new Process({ target: shout, args: [accepted] });
  worker.start();
  client.send('hello');
  console.log(`  the client got: ${await client.recv()}`);
  client.close();
  await worker.join();
  listener.close();

  console.log("-- logToStderr('info'): the library's log, as Python's log_to_stderr(), on stderr");
  logToStderr('info');
  const logged = new Process({ target: whoAmI });
  logged.start();
  await logged.join();
}
