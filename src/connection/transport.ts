// What a Connection needs from the bytes underneath it: a shared-memory ring pair (Pipe) or a
// socket (Listener/Client). Messages are whole byte strings with a tag.

import type { Message, ReadEnd, Tag } from '../internal/ring.ts';

export type { Message, ReadEnd };
export { Tag } from '../internal/ring.ts';

export interface Transport {
  readonly readable: boolean;
  readonly writable: boolean;
  /**
   * Sends a message now or, when there is no room yet, as soon as there is (never blocks). The
   * bytes may be dumps()'s scratch or the caller's own buffer: a transport that keeps them past
   * the call copies them, unless `owned` says they are nobody else's (a fresh serialization).
   */
  send(bytes: Uint8Array, tag: Tag, owned?: boolean): void;
  /** Resolves once every sent message has left this process. */
  flushed(): Promise<void>;
  /** The next message, or why none will come (before `deadline`). */
  recv(deadline?: number, signal?: AbortSignal, keepAlive?: boolean): Promise<Message | ReadEnd>;
  /** True once a message is ready to recv(), false at the deadline or end of stream. */
  poll(deadline?: number, signal?: AbortSignal): Promise<boolean>;
  close(): void;
}
