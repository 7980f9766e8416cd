// One connection per process to each manager server, shared by every proxy of that manager:
// requests carry ids, so many calls can be in flight at once (pipelining). The connection keeps
// the process alive only while a call waits for its reply.

import { Client, type Address } from '../connection/listener.ts';
import type { Connection } from '../connection/connection.ts';
import { ProcessError } from '../errors.ts';
import { rebuildError } from '../internal/remote-error.ts';
import type { Reply, Request } from './protocol.ts';

type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void; what: string };
type Outgoing = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class ManagerClient {
  readonly #conn: Connection<Request | Reply>;
  readonly #address: Address;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #broken: Error | undefined;
  #keepAlive: NodeJS.Timeout | undefined;

  private constructor(conn: Connection<Request | Reply>, address: Address) {
    this.#conn = conn;
    this.#address = address;
    void this.#readReplies();
  }

  static async connect(address: Address, authkey: Uint8Array | null): Promise<ManagerClient> {
    const conn = await Client<Request | Reply>(address, authkey ? { authkey } : {});
    return new ManagerClient(conn, address);
  }

  /** Sends a request; resolves with the server's value or rejects with the remote error. */
  request(message: Outgoing, what: string): Promise<unknown> {
    if (this.#broken) return Promise.reject(this.#broken);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, what });
      this.#refresh();
      try {
        this.#conn.send({ ...message, id } as Request);
      } catch (error) {
        this.#pending.delete(id);
        this.#refresh();
        reject(error);
      }
    });
  }

  close(): void {
    this.#conn.close();
  }

  async #readReplies(): Promise<void> {
    for (;;) {
      let reply: Reply;
      try {
        reply = (await this.#conn.recv({ keepAlive: false })) as Reply;
      } catch (error) {
        this.#fail(error);
        return;
      }
      const pending = this.#pending.get(reply.id);
      if (!pending) continue;
      this.#pending.delete(reply.id);
      this.#refresh();
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(rebuildError(reply.error, `manager at ${describeAddress(this.#address)} (${pending.what})`));
    }
  }

  // The server went away (shutdown, crash, SIGKILL): every call waiting and every later one rejects.
  #fail(cause: unknown): void {
    this.#broken = new ProcessError(
      `Manager: the manager process at ${describeAddress(this.#address)} is gone (it was shut down or died); its proxies no longer work. Start a new manager.`,
      { code: 'ERR_MP_MANAGER_GONE', cause },
    );
    for (const pending of this.#pending.values()) pending.reject(this.#broken);
    this.#pending.clear();
    this.#refresh();
  }

  #refresh(): void {
    if (this.#pending.size > 0 && !this.#keepAlive) this.#keepAlive = setInterval(() => {}, 1 << 30);
    if (this.#pending.size === 0 && this.#keepAlive) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }
}

const clients = new Map<string, Promise<ManagerClient>>();

/** This process's client for the manager at `address` (connecting on first use). */
export function clientFor(address: Address, authkey: Uint8Array | null): Promise<ManagerClient> {
  const key = describeAddress(address);
  let client = clients.get(key);
  if (!client) {
    client = ManagerClient.connect(address, authkey);
    clients.set(key, client);
    client.catch(() => clients.delete(key));
  }
  return client;
}

/** Forgets the client of a manager that was shut down, so a new manager at that address reconnects. */
export function forgetClient(address: Address): void {
  const key = describeAddress(address);
  const client = clients.get(key);
  clients.delete(key);
  void client?.then((c) => c.close(), () => undefined);
}

export function describeAddress(address: Address): string {
  return typeof address === 'string' ? address : `${address.host}:${address.port}`;
}
