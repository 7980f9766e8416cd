// 进程间通信 (communication between processes), 方案二 (option two): a duplex Pipe. Each end can
// send and receive.
//
// Run it: node --import tsx examples/seed/06-pipe.ts

import { Process, Pipe, isMain, type Connection } from 'multiproc';

// Exported, so that the child can import this module and find it (functions cross by reference).
export async function f(conn: Connection): Promise<void> {
  conn.send([12, { name: 'chen' }, 'hello']); // the child sends data to the main process
  const response = await conn.recv(); // the child receives the data the main process sent
  console.log('response', response);
  conn.close(); // close the pipe
}

if (isMain(import.meta)) {
  const [parentConn, childConn] = Pipe(); // create a duplex pipe

  const p = new Process({ target: f, args: [childConn] });
  p.start();

  // The main process receives the data the child sent. The seed's comment says it prints
  // "[42, None, 'hello']", copied from Python's documentation; it prints what the child sent.
  console.log(await parentConn.recv());
  parentConn.send('儿子你好!'); // the main process sends data to the child ("Hello, son!")
  await p.join();
}
