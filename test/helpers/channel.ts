// A test's line to the processes it starts, before multiproc has its own Queue: a Unix socket
// server in the test, JSON lines both ways. Fixtures report facts (`ready`, their pid, what they
// saw) and block until the test releases them, so tests synchronize on messages, never on time.

import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

export type Message = Record<string, unknown>;

export class TestChannel {
  readonly path: string;
  readonly #server: Server;
  readonly #dir: string;
  readonly #received: Message[] = [];
  readonly #waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server, dir: string, path: string) {
    this.#server = server;
    this.#dir = dir;
    this.path = path;
    server.on('connection', (socket) => this.#accept(socket));
  }

  static async open(): Promise<TestChannel> {
    const dir = mkdtempSync(join(tmpdir(), 'mp-test-'));
    const path = join(dir, 'channel.sock');
    const server = createServer();
    server.listen(path);
    await once(server, 'listening');
    return new TestChannel(server, dir, path);
  }

  /** The first message (already received or still to come) for which `match` holds. */
  next(match: (m: Message) => boolean = () => true): Promise<Message> {
    const index = this.#received.findIndex(match);
    if (index >= 0) return Promise.resolve(this.#received.splice(index, 1)[0] as Message);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  /** The first message with `event === name`. */
  event(name: string, extra: (m: Message) => boolean = () => true): Promise<Message> {
    return this.next((m) => m.event === name && extra(m));
  }

  /** Sends `message` to every connected fixture. */
  broadcast(message: Message): void {
    for (const socket of this.#sockets) socket.write(`${JSON.stringify(message)}\n`);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy()); // a fixture that died: its messages so far count
    let buffer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        this.#deliver(JSON.parse(buffer.slice(0, newline)) as Message);
        buffer = buffer.slice(newline + 1);
      }
    });
  }

  #deliver(message: Message): void {
    const index = this.#waiters.findIndex((w) => w.match(message));
    if (index >= 0) this.#waiters.splice(index, 1)[0]?.resolve(message);
    else this.#received.push(message);
  }
}

/** Fixture side: a connection to the test that started us. */
export class FixtureLink {
  readonly #socket: Socket;
  #buffer = '';
  readonly #inbox: Message[] = [];
  readonly #waiters: ((m: Message) => void)[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      this.#buffer += chunk;
      let newline: number;
      while ((newline = this.#buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(this.#buffer.slice(0, newline)) as Message;
        this.#buffer = this.#buffer.slice(newline + 1);
        const waiter = this.#waiters.shift();
        if (waiter) waiter(message);
        else this.#inbox.push(message);
      }
    });
  }

  static async connect(path: string): Promise<FixtureLink> {
    const socket = createConnection(path);
    await once(socket, 'connect');
    return new FixtureLink(socket);
  }

  send(message: Message): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.write(`${JSON.stringify(message)}\n`, (e) => (e ? reject(e) : resolve())));
  }

  /** The next message from the test (a `release`, say). */
  receive(): Promise<Message> {
    const queued = this.#inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.#socket.end();
  }
}

/** Fixture side: sends one message and disconnects. */
export async function report(path: string, message: Message): Promise<void> {
  const link = await FixtureLink.connect(path);
  await link.send(message);
  link.close();
}
