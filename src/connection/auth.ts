// The authkey handshake, in both directions, as Python's deliver_challenge/answer_challenge do
// (with HMAC-SHA256): each side sends 32 random bytes, the other answers with their HMAC under the
// shared key, and the challenger replies WELCOME or FAILURE. Nothing else is read or delivered
// before both directions succeed.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthenticationError } from '../errors.ts';
import { Tag } from '../internal/ring.ts';
import type { Transport } from './transport.ts';

const CHALLENGE = Buffer.from('#CHALLENGE#{sha256}');
const WELCOME = Buffer.from('#WELCOME#');
const FAILURE = Buffer.from('#FAILURE#');
const HANDSHAKE_TIMEOUT_MS = 20_000;

export async function deliverChallenge(transport: Transport, authkey: Buffer, where: string): Promise<void> {
  const nonce = randomBytes(32);
  transport.send(Buffer.concat([CHALLENGE, nonce]), Tag.Bytes);
  const answer = await receive(transport, where);
  const expected = digest(authkey, nonce);
  if (answer.length !== expected.length || !timingSafeEqual(answer, expected)) {
    transport.send(FAILURE, Tag.Bytes);
    await transport.flushed();
    throw new AuthenticationError(`${where}: the peer did not prove it knows the authkey (digest mismatch). Give both sides the same authkey.`);
  }
  transport.send(WELCOME, Tag.Bytes);
}

export async function answerChallenge(transport: Transport, authkey: Buffer, where: string): Promise<void> {
  const challenge = await receive(transport, where);
  if (!challenge.subarray(0, CHALLENGE.length).equals(CHALLENGE)) {
    throw new AuthenticationError(`${where}: the peer sent no authkey challenge. Does it expect an authkey? Give both sides the same authkey (or neither).`);
  }
  transport.send(digest(authkey, challenge.subarray(CHALLENGE.length)), Tag.Bytes);
  const verdict = await receive(transport, where);
  if (!verdict.equals(WELCOME)) {
    throw new AuthenticationError(`${where}: the peer refused our authkey. Give both sides the same authkey.`);
  }
}

function digest(authkey: Buffer, nonce: Buffer): Buffer {
  return createHmac('sha256', authkey).update(nonce).digest();
}

async function receive(transport: Transport, where: string): Promise<Buffer> {
  const message = await transport.recv(performance.now() + HANDSHAKE_TIMEOUT_MS);
  if (typeof message === 'string') {
    throw new AuthenticationError(`${where}: the authkey handshake failed: the peer ${message === 'timed-out' ? 'did not answer in time' : 'closed the connection'}.`);
  }
  return message.bytes;
}
