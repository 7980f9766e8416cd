// Proxies travel: as Process args, as pool task args (and results), through a multiproc Queue,
// and nested in values the manager stores (a list kept in a dict comes back as a working proxy in
// another process, even from another manager's dict).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from '../helpers/backends.ts';
import { Queue } from '../../src/index.ts';
import { BaseProxy, type DictProxy, type ListProxy } from '../../src/managers/index.ts';
import { assertNoLeftovers, joinedCleanly, managerFor, startEach } from '../fixtures/managers/harness.ts';
import { appendAndReturn, takeFromQueue, useNestedList } from '../fixtures/managers/targets.ts';

const timeout = 60_000;

after(() => assertNoLeftovers());

forEachBackend((ctx, backend) => {
  describe('proxies as arguments', () => {
    it('work as pool task args in the workers of a Pool(2), and come back as proxies in the results', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const l = await m.list<unknown>();
      const pool = new ctx.Pool(2);
      // join(), not `await using`: Pool's asyncDispose does not keep the process alive while it
      // waits for the workers, and node:test then sees an event loop with nothing left to do.
      t.after(async () => {
        pool.terminate();
        await pool.join();
      });
      const returned = await pool.starmap(appendAndReturn, [1, 2, 3, 4].map((n) => [l, n] as [ListProxy<unknown>, number]));
      assert.deepEqual((await l.copy()).sort(), [1, 2, 3, 4]);
      assert.equal(returned.length, 4);
      for (const proxy of returned) assert.ok(proxy instanceof BaseProxy);
      await returned[0]!.append(5); // a returned proxy works here
      assert.equal(await l.length(), 5);
    });

    it('cross a multiproc Queue and work in the process that took them', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<string, string>();
      const mq = new Queue<DictProxy<string, string>>();
      const child = startEach(ctx, takeFromQueue, [[mq]]);
      await mq.put(d);
      await joinedCleanly(child);
      assert.equal(await d.get('via'), 'queue');
    });
  });

  describe('nested proxies', () => {
    it('a list stored in a dict (directly, or deep in a value) comes back in another process as a proxy to the same list', { timeout }, async (t) => {
      const m = await managerFor(t, backend);
      const d = await m.dict<string, unknown>();
      const inner = await m.list<unknown>(['from parent']);
      const deepInner = await m.list<unknown>();
      await d.set('inner', inner);
      await d.set('deep', { items: [deepInner] });
      const report = await m.Queue<unknown>();
      await joinedCleanly(startEach(ctx, useNestedList, [[d, report]]));
      assert.deepEqual(await report.get(), { innerIsProxy: true, typeid: 'list', deepIsProxy: true });
      assert.deepEqual(await inner.copy(), ['from parent', 'from child']);
      assert.deepEqual(await deepInner.copy(), ['deep from child']);
      // Here too the stored list is a proxy, and d.copy() keeps it one.
      const again = (await d.get('inner')) as ListProxy<unknown>;
      assert.ok(again instanceof BaseProxy);
      assert.equal(await again.length(), 2);
      assert.ok((await d.copy()).get('inner') instanceof BaseProxy);
    });

    it('a proxy of one manager stored in another manager\'s dict comes back as a proxy to the first', { timeout }, async (t) => {
      const a = await managerFor(t, backend);
      const b = await managerFor(t, backend);
      const list = await a.list<unknown>([1]);
      const d = await b.dict<string, unknown>();
      await d.set('elsewhere', list);
      const back = (await d.get('elsewhere')) as ListProxy<unknown>;
      await back.append(2);
      assert.deepEqual(await list.copy(), [1, 2]);
    });
  });
});
