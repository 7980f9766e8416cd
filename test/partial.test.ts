// partial(): Python's functools.partial for functions that cross processes. A partial is callable
// here, and crosses wherever a function does (Process target, Pool task function and initializer,
// manager factory, Barrier action) as its function's reference plus the bound arguments, library
// objects among them; the other side calls the function with those first. What cannot work is
// refused at partial(), naming the fix.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from './helpers/backends.ts';
import { killStrays } from './helpers/processes.ts';
import { Barrier, Pipe, SharedArray, partial, type ModuleRef } from '../src/index.ts';
import { BaseManager, type BaseProxy } from '../src/managers/index.ts';
import { Account, join3, labelled, mark, scale, sendTo, setLabel, waitAt } from './fixtures/partial/functions.ts';

const timeout = 60_000;
const functions = new URL('./fixtures/partial/functions.ts', import.meta.url).href;

after(() => killStrays());

class BankManager extends BaseManager {}
BankManager.register('Account', partial(Account, 'ada'));

interface AccountProxy extends BaseProxy {
  deposit(amount: number): Promise<number>;
  describe(): Promise<string>;
}

describe('partial() in this process', () => {
  it('calls the function with the bound arguments first, a partial of a partial with both, and constructs a class', () => {
    assert.equal(partial(scale, 10)(4), 40);
    assert.equal(partial(partial(join3, 'a'), 'b')('c'), 'abc');
    const account = partial(Account, 'ada')(5);
    assert.ok(account instanceof Account);
    assert.equal(account.describe(), 'ada: 5');
    assert.equal(partial(scale, 3).name, 'partial scale');
  });

  it('refuses, at once, a function that cannot be sent, arguments that cannot cross, and a reference without `args`; checks library objects without counting them sent', async () => {
    const local = (x: number) => x;
    assert.throws(() => partial(local), { code: 'ERR_MP_TARGET_NOT_REFERENCEABLE', message: /partial\(local\).*export it from its module/s });
    assert.throws(() => partial(join3, 'a', (() => 'b') as unknown as string), { message: /partial\(join3\): its bound args\[1\].*function/s });
    const [reader, writer] = Pipe();
    partial(join3, writer as never);
    writer.close();
    await assert.rejects(reader.recv({ timeout: 10_000 }), { code: 'ERR_MP_EOF' }, 'partial() checked the Pipe end without counting a copy in flight');
    reader.close();
    const ref = { module: functions, name: 'scale' } as unknown as (x: number) => number;
    assert.throws(() => partial(ref, 1), { code: 'ERR_MP_INVALID_ARGUMENT', message: /args: \[\.\.\.\]/ });
  });
});

forEachBackend((ctx, backend) => {
  it('a Process target: the bound arguments, a Queue among them, come before the args', { timeout }, async () => {
    const q = new ctx.Queue<string>();
    try {
      const p = new ctx.Process({ target: partial(sendTo, q, 'bound'), args: [7] });
      p.start();
      assert.equal(await q.get({ timeout: 30_000 }), 'bound:7');
      await p.join();
      assert.equal(p.exitCode, 0);
    } finally {
      q.close();
    }
  });

  it('Pool: map, imap, starmap and apply with partials, a new partial per call, and { module, name, args }', { timeout }, async () => {
    await using pool = new ctx.Pool(2);
    assert.deepEqual(await pool.map(partial(scale, 10), [1, 2, 3]), [10, 20, 30]);
    assert.deepEqual(await pool.map(partial(scale, -1), [1, 2, 3], 2), [-1, -2, -3], 'the same function with other bound args');
    const streamed: number[] = [];
    for await (const y of pool.imap(partial(scale, 2), [5, 6])) streamed.push(y);
    assert.deepEqual(streamed, [10, 12]);
    assert.deepEqual(await pool.starmap(partial(join3, '<'), [['a', '>'], ['b', '>']]), ['<a>', '<b>']);
    const applied = await Promise.all([1, 2, 3].map((k) => pool.apply(partial(scale, k), [100])));
    assert.deepEqual(applied, [100, 200, 300]);
    const explicit: ModuleRef = { module: functions, name: 'join3', args: ['x', 'y'] };
    assert.deepEqual(await pool.map(explicit, ['1', '2']), ['xy1', 'xy2']);
  });

  it('Pool: a partial initializer gets its bound arguments before initargs', { timeout }, async () => {
    await using pool = new ctx.Pool(1, { initializer: partial(setLabel, 'init'), initargs: ['ok'] });
    assert.deepEqual(await pool.map(labelled, [1]), ['init-ok/1']);
  });

  it('Pool: bound arguments that cannot cross are refused at the call, and the pool goes on', { timeout }, async () => {
    await using pool = new ctx.Pool(1);
    const explicit = { module: functions, name: 'scale', args: [() => 1] } as ModuleRef;
    await assert.rejects(pool.map(explicit, [1]), { code: 'ERR_MP_NOT_CLONEABLE', message: /Pool\.map\(\): scale's bound args\[0\] is a function/ });
    await assert.rejects(pool.apply({ module: functions, name: 'scale', args: 3 } as unknown as ModuleRef, [1]), { code: 'ERR_MP_INVALID_ARGUMENT', message: /`args`.*array/ });
    assert.deepEqual(await pool.map(partial(scale, 2), [1]), [2]);
  });

  it('a manager factory: partial(Class, ...) constructs in the server with the bound arguments first', { timeout }, async () => {
    await using manager = new BankManager({ context: backend });
    await manager.start();
    const account = (await (manager as unknown as { Account(balance: number): Promise<AccountProxy> }).Account(10)) as AccountProxy;
    assert.equal(await account.deposit(5), 15);
    assert.equal(await account.describe(), 'ada: 15');
  });

  it('a Barrier action in a child: the bound arguments reach it', { timeout }, async () => {
    const flags = new SharedArray('i', 2);
    const barrier = new Barrier(2, partial(mark, flags, 1));
    // Two children are the two parties: the action runs in one of them, from its reference.
    const parties = [0, 1].map(() => new ctx.Process({ target: waitAt, args: [barrier] }));
    for (const p of parties) p.start();
    for (const p of parties) await p.join();
    assert.deepEqual(parties.map((p) => p.exitCode), [0, 0]);
    assert.deepEqual(flags.toArray(), [0, 1], 'the action ran once, with its bound index');
  });
});
