// multiproc/connection: Python's multiprocessing.connection.
export { Connection, Pipe } from './connection.ts';
export { Listener, Client } from './listener.ts';
export type { Address, ListenerOptions, ClientOptions } from './listener.ts';
export { wait } from './wait.ts';
export type { Waitable } from './wait.ts';
