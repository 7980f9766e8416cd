// registerClass(): instances of a program's classes cross processes and threads (through Queues,
// Pipes, Process args and pool tasks) and arrive as instances of their class, with their methods,
// their links (cycles too) and the library objects they hold; the receiving side imports the
// class's module when it has not; what cannot cross is refused at the send, naming the fix.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend } from './helpers/backends.ts';
import { killStrays } from './helpers/processes.ts';
import { Pipe, Process, Queue, registerClass, type Connection } from '../src/index.ts';
import { LabelledPoint, Point, doublePoint, inspectShapes, makeShapes, shapesAsArgs, type Shapes } from './fixtures/classes/shapes.ts';
import { describeReceived } from './fixtures/classes/blind.ts';
import { takeNowThenWait } from './fixtures/classes/blind-loaded.ts';

const timeout = 60_000;

after(() => killStrays());

const expectedSeen = { point: 5, tree: 'leaf of leaf', secret: 'sesame', mailbox: 'ada' };

describe('registerClass() in one process', () => {
  it('a Queue and a Pipe deliver instances of their classes, with cycles, #private state by its reducer, and a Queue inside', async () => {
    const inner = new Queue<string>();
    const q = new Queue<Shapes>();
    const [a, b] = Pipe<Shapes>();
    try {
      const shapes = makeShapes(inner);
      q.putNowait(shapes);
      const got = await q.get();
      assert.notEqual(got, shapes);
      assert.deepEqual(inspectShapes(got), expectedSeen);
      a.send(shapes);
      assert.deepEqual(inspectShapes(await b.recv()), expectedSeen);
      got.mailbox.queue.putNowait('through the rebuilt queue');
      assert.equal(await inner.get(), 'through the rebuilt queue');
      assert.deepEqual(Object.keys(got.point), ['x', 'y'], 'own properties, as they were');
    } finally {
      for (const end of [a, b]) end.close();
      q.close();
      inner.close();
    }
  });

  it('refuses, at the send and naming the fix: an unregistered subclass, and a registered class its module does not export', () => {
    const q = new Queue<unknown>();
    try {
      assert.throws(() => q.putNowait({ p: new LabelledPoint(1, 2) }), {
        name: 'TypeError',
        code: 'ERR_MP_NOT_CLONEABLE',
        message: /Queue\.putNowait\(\)\.p is an instance of LabelledPoint: .*registerClass\(LabelledPoint\)/,
      });
      class Unexported {
        n = 1;
      }
      registerClass(Unexported);
      assert.throws(() => q.putNowait(new Unexported()), { code: 'ERR_MP_TARGET_NOT_REFERENCEABLE', message: /an instance of the registered class Unexported.*function Unexported cannot be sent to another process: it is not exported.*\(`export class Unexported \.\.\.`\)/ });
      assert.equal(q.qsize(), 0, 'nothing was put');
    } finally {
      q.close();
    }
  });

  it('registerClass() checks its arguments: two classes under one name, reduce without rebuild, not a class', () => {
    class Other {}
    assert.throws(() => registerClass(Other, { name: 'Point' }), { code: 'ERR_MP_INVALID_ARGUMENT', message: /another class is registered under the name 'Point'. Pass \{ name \}/ });
    assert.throws(() => registerClass(Other, { reduce: () => 1 }), { code: 'ERR_MP_INVALID_ARGUMENT', message: /pass both `reduce` and `rebuild`/ });
    assert.throws(() => registerClass(42 as never), { code: 'ERR_MP_INVALID_ARGUMENT', message: /expected a class, got 42/ });
    registerClass(Point); // the same class again: nothing changes
  });

  it("registerClass() refuses the library's classes and their subclasses (Process, Queue), and a Process object is refused by name wherever it is sent", () => {
    class MyQueue extends Queue {}
    assert.throws(() => registerClass(Process), { code: 'ERR_MP_INVALID_ARGUMENT', message: /^registerClass\(Process\): Process is the library's own class, and the library decides how its objects cross .*Remove the registerClass\(\) call\.$/ });
    assert.throws(() => registerClass(MyQueue), { code: 'ERR_MP_INVALID_ARGUMENT', message: /^registerClass\(MyQueue\): MyQueue extends the library's Queue, and the library decides/ });
    const q = new Queue();
    try {
      const p = new Process({ name: 'stays' });
      assert.throws(() => q.putNowait({ worker: p }), { code: 'ERR_MP_INVALID_ARGUMENT', message: /^<Process name='stays' initial> cannot be sent to another process or thread: a Process object stays where it was made\. Send what the other side needs instead/ });
      assert.equal(q.qsize(), 0, 'nothing was put');
      q.putNowait('still usable');
      assert.equal(q.qsize(), 1);
    } finally {
      q.close();
    }
  });
});

forEachBackend((ctx) => {
  describe('registerClass() across processes', () => {
    it('instances in Process args arrive usable; the child sends a new instance back through a Queue', { timeout }, async () => {
      const inner = new Queue<string>();
      const out = new Queue<{ seen: unknown; moved: Point }>();
      try {
        const p = new ctx.Process({ target: shapesAsArgs, args: [makeShapes(inner), out] });
        p.start();
        const { seen, moved } = await out.get();
        assert.deepEqual(seen, expectedSeen);
        assert.ok(moved instanceof Point, `the child's Point arrived as ${String(moved?.constructor?.name)}`);
        assert.equal(moved.norm(), Math.hypot(4, 5));
        assert.equal(await inner.get(), 'to ada');
        await p.join();
        assert.equal(p.exitCode, 0);
      } finally {
        out.close();
        inner.close();
      }
    });

    it('a child whose module does not import the class imports it to rebuild what it gets', { timeout }, async () => {
      const inbox = new Queue<unknown>();
      const out = new Queue<unknown>();
      try {
        const p = new ctx.Process({ target: describeReceived, args: [inbox, out] });
        p.start();
        await inbox.put(new Point(6, 8));
        assert.deepEqual(await out.get(), { className: 'Point', norm: 10 });
        await p.join();
        assert.equal(p.exitCode, 0);
      } finally {
        inbox.close();
        out.close();
      }
    });

    it("an item that getNowait() could not rebuild (its class's module not loaded) is rebuilt once by the next get(): a Pipe end in it is not counted twice", { timeout }, async () => {
      const inbox = new Queue<{ writer: Connection; shape: Point }>();
      const out = new Queue<unknown>();
      const [reader, writer] = Pipe(false);
      try {
        await inbox.put({ writer, shape: new Point(3, 4) }); // in the Queue's ring once put() resolves
        const p = new ctx.Process({ target: takeNowThenWait, args: [inbox, out] });
        p.start();
        assert.equal(await out.get(), 'ERR_MP_NOT_LOADED');
        assert.equal(await reader.recv(), 'from the child');
        await p.join();
        assert.equal(p.exitCode, 0);
        // The child closed its copy once, and its exit closed nothing more: this process's copy keeps the stream open.
        assert.equal(await reader.poll(0), false, 'not the end of the stream: a writer is still open here');
        writer.send('from here');
        assert.equal(await reader.recv(), 'from here');
      } finally {
        for (const end of [reader, writer]) end.close();
        inbox.close();
        out.close();
      }
    });

    it('pool tasks take and return instances', { timeout }, async () => {
      const pool = new ctx.Pool(1);
      try {
        const doubled = await pool.apply(doublePoint, [new Point(1, 2)]);
        assert.ok(doubled instanceof Point);
        assert.deepEqual([doubled.x, doubled.y, doubled.norm()], [2, 4, Math.hypot(2, 4)]);
        const many = await pool.map(doublePoint, [new Point(1, 1), new Point(2, 2)]);
        assert.deepEqual(many.map((q) => q instanceof Point && q.x), [2, 4]);
      } finally {
        pool.terminate();
        await pool.join();
      }
    });
  });
});
