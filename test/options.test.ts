// Options that a call does not take are refused, as Python refuses an unexpected keyword argument:
// a misspelt option was dropped silently (`authKey` left a TCP Listener without authentication,
// `targt` made a Process that ran nothing, Python's `kwargs` vanished).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, Process, ThreadPool } from '../src/index.ts';
import { Client, Listener } from '../src/connection/index.ts';
import { SyncManager } from '../src/managers/index.ts';
import { square } from './fixtures/pool/targets.ts';

const timeout = 60_000;

/** Asserts a TypeError for the unknown option `key`, with the hint `hint` when given. */
function unknown(key: string, hint?: RegExp) {
  return (error: Error & { code?: string }) => {
    assert.ok(error instanceof TypeError, `expected a TypeError, got ${error}`);
    assert.equal(error.code, 'ERR_MP_INVALID_ARGUMENT');
    assert.match(error.message, new RegExp(`: unknown option \`${key}\`\\.`));
    if (hint) assert.match(error.message, hint);
    return true;
  };
}

describe('unknown options', () => {
  it('new Listener() and Client() refuse a misspelt option (authKey would have meant no authentication) and a bare address', async () => {
    assert.throws(() => new Listener({ address: { host: '127.0.0.1', port: 0 }, authKey: 'secret' } as never), unknown('authKey', /Did you mean `authkey`\? It takes `address`, `authkey`, `backlog`\./));
    assert.throws(() => new Listener('/tmp/some.sock' as never), { code: 'ERR_MP_INVALID_ARGUMENT', message: /expected options \{ address, authkey, backlog \}.*To listen at an address: new Listener\(\{ address \}\)/ });
    await assert.rejects(Client('/tmp/nowhere.sock', { authKey: 'secret' } as never), unknown('authKey', /Did you mean `authkey`\?/));
  });

  it("new Process() refuses a misspelt option and Python's kwargs, naming the fix", () => {
    assert.throws(() => new Process({ targt: square } as never), unknown('targt', /Did you mean `target`\?/));
    assert.throws(() => new Process({ target: square, kwargs: { x: 1 } } as never), unknown('kwargs', /JavaScript has no keyword arguments: pass the values in `args`/));
  });

  it('a Pool refuses an unknown option at new Pool() and at each call, before any task is sent', { timeout }, async () => {
    assert.throws(() => new Pool(1, { maxtaskperchild: 2 } as never), unknown('maxtaskperchild', /Did you mean `maxtasksperchild`\?/));
    const pool = new ThreadPool(1);
    try {
      await assert.rejects(pool.map(square, [1, 2], { chunksze: 2 } as never), unknown('chunksze', /Did you mean `chunksize`\?/));
      await assert.rejects(pool.apply(square, [2], { callback: () => {} } as never), unknown('callback', /It takes `timeout`, `signal`\./));
      assert.throws(() => pool.applyAsync(square, [2], { kwds: {} } as never), unknown('kwds', /no keyword arguments/));
      assert.throws(() => pool.imap(square, [1], { chunkSize: 1 } as never), unknown('chunkSize', /Did you mean `chunksize`\?/));
      assert.deepEqual(pool.stats().tasks, { queued: 0, running: 0, completed: 0, failed: 0 });
      assert.equal(await pool.apply(square, [3]), 9, 'the pool goes on');
    } finally {
      pool.terminate();
      await pool.join();
    }
  });

  it('a manager refuses an unknown option at new, start() and connect()', async () => {
    assert.throws(() => new SyncManager({ adress: '/tmp/m.sock' } as never), unknown('adress', /Did you mean `address`\?/));
    await assert.rejects(new SyncManager().start({ timout: 10 } as never), unknown('timout', /Did you mean `timeout`\?/));
    await assert.rejects(new SyncManager({ address: '/tmp/m.sock' }).connect({ signl: undefined } as never), unknown('signl', /Did you mean `signal`\?/));
  });
});
