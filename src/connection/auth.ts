// The authkey handshake, in both directions, as Python's deliver_challenge/answer_challenge do
// (with HMAC-SHA256): each side sends 32 random bytes, the other answers with their HMAC under the
// shared key, and the challenger replies WELCOME or FAILURE. Nothing else is read or delivered
// before both directions succeed: the handshake's frames carry their own tag (socket-transport.ts),
// so a message is never taken for an answer, and a side without an authkey (NO_AUTHKEY) fails it
// at once instead of after the timeout.

import { AuthenticationError } from '../errors.ts';
import { NO_AUTHKEY, type SocketTransport } from './socket-transport.ts';
import { monotonicMs } from '../internal/clock.ts';

const CHALLENGE = Buffer.from('#CHALLENGE#{sha256}');
const WELCOME = Buffer.from('#WELCOME#');
const FAILURE = Buffer.from('#FAILURE#');
/** A Client's first frame when it has an authkey: a Listener without one then fails at once (see socket-transport.ts). */
const HAS_AUTHKEY = Buffer.from('#AUTHKEY#');
const HANDSHAKE_TIMEOUT_MS = 20_000;

// node:crypto takes a fresh thread 3-5 ms to load: loaded by the first handshake, not by every child.
const nodeCrypto = () => process.getBuiltinModule('node:crypto');

export async function deliverChallenge(transport: SocketTransport, authkey: Buffer, where: string): Promise<void> {
  const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
  transport.sendHandshake(Buffer.concat([CHALLENGE, nonce]));
  const answer = await receive(transport, where);
  const expected = digest(authkey, nonce);
  if (answer.length !== expected.length || !nodeCrypto().timingSafeEqual(answer, expected)) {
    throw new AuthenticationError(`${where}: the other side did not prove it knows the authkey (digest mismatch). Give both sides the same authkey.`);
  }
  transport.sendHandshake(WELCOME);
}

export async function answerChallenge(transport: SocketTransport, authkey: Buffer, where: string): Promise<void> {
  const challenge = await receive(transport, where);
  if (!challenge.subarray(0, CHALLENGE.length).equals(CHALLENGE)) {
    throw new AuthenticationError(`${where}: the other side sent no authkey challenge. Give both sides the same authkey (or neither).`);
  }
  transport.sendHandshake(digest(authkey, challenge.subarray(CHALLENGE.length)));
  const verdict = await receive(transport, where);
  if (!verdict.equals(WELCOME)) {
    throw new AuthenticationError(`${where}: the other side refused our authkey. Give both sides the same authkey.`);
  }
}

/** A Client with an authkey says so before it waits for the Listener's challenge. */
export function announceKey(transport: SocketTransport): void {
  transport.sendHandshake(HAS_AUTHKEY);
}

/** After a failed handshake: tells the other side (so that it fails now, not at its timeout) and closes. */
export function refuse(transport: SocketTransport): void {
  transport.sendHandshake(FAILURE);
  transport.abandon();
}

function digest(authkey: Buffer, nonce: Buffer): Buffer {
  return nodeCrypto().createHmac('sha256', authkey).update(nonce).digest();
}

async function receive(transport: SocketTransport, where: string): Promise<Buffer> {
  const deadline = monotonicMs() + HANDSHAKE_TIMEOUT_MS;
  let frame = await transport.recvHandshake(deadline);
  // A keyed Client's announcement: the challenge this side sends answers it.
  while (Buffer.isBuffer(frame) && frame.equals(HAS_AUTHKEY)) frame = await transport.recvHandshake(deadline);
  if (frame === 'message') {
    throw new AuthenticationError(`${where}: the other side sent a message instead of taking part in the authkey handshake. Give both sides the same authkey (or neither).`);
  }
  if (typeof frame === 'string') {
    throw new AuthenticationError(`${where}: the authkey handshake failed: the other side ${frame === 'timed-out' ? `did not answer within ${HANDSHAKE_TIMEOUT_MS / 1000} s` : 'closed the connection'}.`);
  }
  if (frame.equals(NO_AUTHKEY)) {
    throw new AuthenticationError(`${where}: the other side has no authkey, and this side has one. Give both sides the same authkey (or neither).`);
  }
  return frame;
}
