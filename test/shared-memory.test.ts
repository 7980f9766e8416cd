import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from './helpers/backends.ts';
import { TestChannel } from './helpers/channel.ts';
import { killStrays } from './helpers/processes.ts';
import { TSX_IMPORT, killRuns, lines, runScript } from './helpers/spawn-script.ts';
import { ProcessError, type Process } from '../src/index.ts';
import { SharedMemory } from '../src/shared-memory.ts';
import { unlinkQuietly } from '../src/resource-tracker.ts';
import { createAndUnlink, createNamed, openNamed, shareBytes } from './fixtures/shm/targets.ts';
import { noPython, runPython } from './fixtures/shm/interop.ts';

const timeout = 30_000;
const prefix = `mptest-${process.pid}-`;
let counter = 0;
/** A fresh user-chosen name; after() checks that none of them is left in /dev/shm. */
const uniqueName = (what: string) => `${prefix}${what}-${counter++}`;
const exists = (name: string) => existsSync(`/dev/shm/${name}`);
const fixture = (file: string) => fileURLToPath(new URL(`./fixtures/shm/${file}`, import.meta.url));

let channel: TestChannel;

before(async () => {
  channel = await TestChannel.open();
});

after(async () => {
  killStrays();
  killRuns();
  await channel.close();
  const left = readdirSync('/dev/shm').filter((name) => name.startsWith(prefix));
  for (const name of left) unlinkQuietly(`/${name}`);
  assert.deepEqual(left, [], 'segments of this test file left in /dev/shm');
});

/**
 * The child's message, or a failure naming its exit code when it exits with an error first (so a
 * broken child fails the test at once instead of at its timeout). A child that exits with 0 sent
 * the message before it ended: wait for it.
 */
function fromChild(p: Process, event: string, match: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const message = channel.event(event, match);
  const exited = p.join().then(() => {
    if (p.exitCode !== 0) throw new Error(`${p.name} exited with code ${p.exitCode} before it sent '${event}' (see its stderr)`);
    return message;
  });
  return Promise.race([message, exited]);
}

/** Creates a segment for one test and unlinks it when the test ends. */
function created(t: { after: (fn: () => void) => void }, options: { name?: string; size: number }): SharedMemory {
  const shm = new SharedMemory({ ...options, create: true });
  t.after(() => shm.unlink());
  return shm;
}

describe('SharedMemory', () => {
  it('create: true makes /dev/shm/<name> of exactly `size` zeroed bytes; opening the name maps the same memory', { timeout }, (t) => {
    const name = uniqueName('basic');
    const shm = created(t, { name, size: 100 });
    assert.equal(shm.name, name);
    assert.equal(shm.size, 100);
    assert.equal(statSync(`/dev/shm/${name}`).size, 100);
    assert.ok(shm.buf instanceof Uint8Array);
    assert.equal(shm.buf.length, 100);
    assert.ok(shm.buf.every((byte) => byte === 0));
    const other = new SharedMemory({ name });
    assert.equal(other.size, 100, 'opening takes the size from the segment');
    other.buf[99] = 7;
    assert.equal(shm.buf[99], 7);
    shm.buf.set([1, 2, 3]);
    assert.deepEqual([...other.buf.subarray(0, 3)], [1, 2, 3]);
    other.close();
    assert.match(String(shm), new RegExp(`^SharedMemory\\('${name}', size=100, created\\)$`));
  });

  it('without a name, create: true makes a program-owned name mp-<main pid>-<16 hex>', { timeout }, (t) => {
    const shm = created(t, { size: 8 });
    assert.match(shm.name, new RegExp(`^mp-${process.pid}-[0-9a-f]{16}$`));
    assert.ok(exists(shm.name));
  });

  it('keeps odd and large sizes exactly: 1 byte, a page and one, 16 MiB', { timeout }, (t) => {
    for (const size of [1, 4097, 16 * 1024 * 1024]) {
      const shm = created(t, { name: uniqueName(`size${size}`), size });
      assert.equal(shm.size, size);
      assert.equal(shm.buf.byteLength, size);
      assert.equal(statSync(`/dev/shm/${shm.name}`).size, size);
      shm.buf[size - 1] = 255;
      assert.equal(new SharedMemory({ name: shm.name }).buf[size - 1], 255);
    }
  });

  it('creating an existing name throws ProcessError EEXIST, naming the segment and how to open it', { timeout }, (t) => {
    const name = uniqueName('eexist');
    created(t, { name, size: 8 });
    assert.throws(
      () => new SharedMemory({ name, create: true, size: 8 }),
      (e: ProcessError) =>
        e instanceof ProcessError &&
        e.code === 'EEXIST' &&
        e.message === `new SharedMemory(): a segment named '${name}' already exists. Open it with { name: '${name}' } (create: false), or choose another name.` &&
        (e.cause as NodeJS.ErrnoException).code === 'EEXIST',
    );
  });

  it('opening a missing name throws ProcessError ENOENT, saying how to create it', { timeout }, () => {
    const name = uniqueName('enoent');
    assert.throws(
      () => new SharedMemory({ name }),
      (e: ProcessError) =>
        e instanceof ProcessError &&
        e.code === 'ENOENT' &&
        e.message === `new SharedMemory(): no segment named '${name}' exists (it was never created, or was unlinked). Create it with { name: '${name}', create: true, size }.`,
    );
    assert.equal(exists(name), false);
  });

  it('rejects a size of 0, a negative or fractional size and a non-number with RangeError or TypeError', { timeout }, () => {
    for (const size of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(
        () => new SharedMemory({ create: true, size }),
        (e: RangeError) => e instanceof RangeError && (e as RangeError & { code: string }).code === 'ERR_MP_OUT_OF_RANGE' && /expected `size` to be a positive integer number of bytes when creating/.test(e.message),
        `size ${size}`,
      );
    }
    assert.throws(
      () => new SharedMemory({ create: true, size: '8' as unknown as number }),
      (e: TypeError) => e instanceof TypeError && e.message === 'new SharedMemory(): expected `size` to be a number of bytes, got "8" (string).',
    );
  });

  it('rejects bad names: empty, with a slash or NUL, "." or "..", not a string (TypeError) and too long (RangeError)', { timeout }, (t) => {
    for (const name of ['', 'a/b', '/lead', 'nul\0byte', '.', '..', 42]) {
      assert.throws(
        () => new SharedMemory({ name: name as string, create: true, size: 8 }),
        (e: TypeError) => e instanceof TypeError && (e as TypeError & { code: string }).code === 'ERR_MP_INVALID_ARGUMENT' && /expected `name` to be a non-empty string without '\/' or NUL/.test(e.message),
        `name ${JSON.stringify(name)}`,
      );
    }
    assert.throws(
      () => new SharedMemory({ name: 'x'.repeat(256), create: true, size: 8 }),
      (e: RangeError) => e instanceof RangeError && e.message === 'new SharedMemory(): `name` is 256 bytes long; a name in /dev/shm has at most 255. Choose a shorter name.',
    );
    const longest = created(t, { name: `${prefix}${'x'.repeat(255 - prefix.length)}`, size: 8 });
    assert.equal(longest.name.length, 255);
  });

  it('rejects a missing name without create, a non-boolean create and options that are not an object', { timeout }, () => {
    assert.throws(() => new SharedMemory(), { name: 'TypeError', message: 'new SharedMemory(): give the `name` of the segment to open, or pass create: true to make a new one.' });
    assert.throws(() => new SharedMemory({ name: 'x', create: 1 as unknown as boolean }), { name: 'TypeError', message: 'new SharedMemory(): expected `create` to be a boolean, got 1 (number).' });
    assert.throws(() => new SharedMemory('x' as never), {
      name: 'TypeError',
      message: 'new SharedMemory(): expected an options object { name, create, size }, got "x" (string). To open a segment by name: new SharedMemory({ name: "x" }).',
    });
  });

  it('buf throws ProcessError ERR_MP_CLOSED after close(); closing twice is harmless; the name stays until unlink()', { timeout }, () => {
    const name = uniqueName('close');
    const shm = new SharedMemory({ name, create: true, size: 8 });
    shm.close();
    shm.close();
    assert.throws(
      () => shm.buf,
      (e: ProcessError) => e instanceof ProcessError && e.code === 'ERR_MP_CLOSED' && e.message === `SharedMemory.buf: '${name}' was closed in this process. Open it again with new SharedMemory({ name: '${name}' }).`,
    );
    assert.ok(exists(name), 'close() does not unlink');
    shm.unlink();
    assert.equal(exists(name), false);
    shm.unlink(); // already gone: quiet, as a second unlink from another process would be
  });

  it('`using` and `await using` close it at the end of the block, and do not unlink it', { timeout }, async (t) => {
    const name = uniqueName('using');
    t.after(() => unlinkQuietly(`/${name}`));
    let kept: SharedMemory;
    {
      using shm = new SharedMemory({ name, create: true, size: 8 });
      shm.buf[0] = 5;
      kept = shm;
    }
    assert.throws(() => kept.buf, { code: 'ERR_MP_CLOSED' });
    {
      await using again = new SharedMemory({ name });
      assert.equal(again.buf[0], 5);
      kept = again;
    }
    assert.throws(() => kept.buf, { code: 'ERR_MP_CLOSED' });
    assert.ok(exists(name));
  });
});

forEachBackend((ctx, backend) => {
  describe('SharedMemory across processes', () => {
    for (const named of [true, false]) {
      it(`a ${named ? 'named' : 'program-owned'} SharedMemory passed as a Process arg maps the same memory: writes are seen both ways`, { timeout }, async (t) => {
        const label = `bytes-${backend}-${named}`;
        const shm = created(t, named ? { name: uniqueName(label), size: 4096 } : { size: 4096 });
        shm.buf[0] = 42;
        const p = new ctx.Process({ target: shareBytes, args: [channel.path, label, shm] });
        p.start();
        t.after(() => p.kill());
        const seen = await fromChild(p, 'shm-seen', (m) => m.label === label);
        assert.deepEqual(seen, { event: 'shm-seen', label, isSharedMemory: true, name: shm.name, size: 4096, first: 42 });
        await channel.event('shm-wrote', (m) => m.label === label);
        assert.equal(shm.buf[1], 0xab, "the child's write is seen here");
        shm.buf[2] = 99;
        channel.broadcast({ go: label });
        const later = await channel.event('shm-later', (m) => m.label === label);
        assert.equal(later.third, 99, "this process's write, made while the child runs, is seen there");
        await p.join();
        assert.equal(p.exitCode, 0);
        assert.ok(exists(shm.name), "the child's close() leaves the segment");
      });
    }

    it("a named segment that a child created and did not unlink outlives that child (as in Python): this process reads it, and unlink() removes it with the child's mark", { timeout }, async (t) => {
      const name = uniqueName(`child-created-${backend}`);
      t.after(() => unlinkQuietly(`/${name}`));
      const p = new ctx.Process({ target: createNamed, args: [channel.path, name] });
      p.start();
      const seen = await fromChild(p, 'created', (m) => m.name === name);
      assert.equal(seen.exists, true);
      await p.join();
      assert.equal(p.exitCode, 0);
      const shm = new SharedMemory({ name });
      assert.equal(shm.buf[0], 1, 'what the child wrote');
      const mark = `mp-${process.pid}-u${Buffer.from(name).toString('hex')}`;
      assert.ok(exists(mark), 'the child marked the name for this program to unlink at its end');
      shm.close();
      shm.unlink();
      assert.equal(exists(name), false);
      assert.equal(exists(mark), false, 'unlink() took the mark too');
    });

    it('a segment a child only opened is not unlinked at its exit, and one it unlinked is gone', { timeout }, async (t) => {
      const name = uniqueName(`child-opened-${backend}`);
      const shm = created(t, { name, size: 8 });
      const opener = new ctx.Process({ target: openNamed, args: [channel.path, name] });
      opener.start();
      await fromChild(opener, 'opened', (m) => m.name === name);
      await opener.join();
      assert.equal(opener.exitCode, 0);
      assert.ok(exists(name), 'the segment outlives a process that only opened it');
      assert.equal(shm.buf[0], 2);

      const unlinkedName = uniqueName(`child-unlinked-${backend}`);
      const unlinker = new ctx.Process({ target: createAndUnlink, args: [channel.path, unlinkedName] });
      unlinker.start();
      const seen = await fromChild(unlinker, 'unlinked', (m) => m.name === unlinkedName);
      await unlinker.join();
      assert.equal(seen.exists, false);
      assert.equal(unlinker.exitCode, 0, 'nothing failed at exit over the missing name');
    });
  });
});

describe('program-owned segments', () => {
  it('are unlinked when the program exits, including one a child made (which lives until then)', { timeout }, async () => {
    const result = await runScript(fixture('program-owned.ts'));
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    const out = lines(result.stdout);
    const names = Object.fromEntries(out.map((line) => line.split(' ')).map(([key, ...rest]) => [key, rest]));
    const [main] = names.main as [string];
    const [list] = names.list as [string];
    const [child] = names.child as [string];
    const rootPid = /^mp-(\d+)-/.exec(main)?.[1];
    assert.ok(rootPid && rootPid !== String(process.pid), main);
    for (const name of [list, child]) assert.match(name, new RegExp(`^mp-${rootPid}-[0-9a-f]{16}$`), 'every name carries the main pid');
    assert.deepEqual([...(names.alive as string[])].sort(), [main, list, child].sort(), "the child's segment lived until the program's end");
    for (const name of [main, list, child]) assert.equal(exists(name), false, `${name} outlived its program`);
  });

  it('a named segment a child process or thread created outlives it, and is unlinked when the program ends, with its mark', { timeout }, async () => {
    const prefix = uniqueName('program-end');
    const result = await runScript(fixture('child-named.ts'), [prefix]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), [`process ${prefix}-process 1`, `thread ${prefix}-thread 1`]);
    for (const backend of ['process', 'thread']) assert.equal(exists(`${prefix}-${backend}`), false, `${backend}: the segment outlived its program`);
    assert.deepEqual(readdirSync('/dev/shm').filter((name) => /^mp-\d+-u/.test(name) && name.includes(Buffer.from(prefix).toString('hex'))), [], 'no mark left');
  });

  it('of a SIGKILLed program are swept by the next multiproc program that makes shared memory', { timeout }, async (t) => {
    const holder = spawn(process.execPath, [...TSX_IMPORT, fixture('hold-anonymous.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => holder.kill('SIGKILL'));
    const [line] = (await once(holder.stdout.setEncoding('utf8'), 'data')) as [string];
    const name = line.trim();
    t.after(() => unlinkQuietly(`/${name}`));
    assert.match(name, new RegExp(`^mp-${holder.pid}-[0-9a-f]{16}$`));
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    // No exit hook ran. (Another multiproc program starting on this machine right now could sweep
    // it first; that would be the same mechanism, only sooner.)
    assert.ok(exists(name), 'a SIGKILL leaves the segment behind');
    const next = await runScript(fixture('program-owned.ts'));
    assert.equal(next.code, 0, next.stderr);
    assert.equal(exists(name), false, 'the next program swept the dead program\'s segment');
  });
});

describe('SharedMemory and Python', { skip: noPython }, () => {
  it("a named segment created here is read and written by Python's SharedMemory(name)", { timeout }, async (t) => {
    const name = uniqueName('to-python');
    const shm = created(t, { name, size: 64 });
    shm.buf.set(Buffer.from('hello'));
    const py = await runPython(
      `shm = SharedMemory(sys.argv[1]); untrack(shm)
print(shm.name, shm.size, bytes(shm.buf[:5]).decode())
shm.buf[5:10] = b'world'
shm.close()`,
      [name],
    );
    assert.equal(py.stderr, '');
    assert.equal(py.code, 0);
    assert.deepEqual(py.lines, [`${name} 64 hello`]);
    assert.equal(Buffer.from(shm.buf.subarray(0, 10)).toString(), 'helloworld');
    assert.ok(exists(name), 'the Python process did not unlink it');
  });

  it('a segment created by Python (create=True) opens here, and Python reads what is written here', { timeout }, async (t) => {
    const name = uniqueName('from-python');
    t.after(() => unlinkQuietly(`/${name}`));
    const made = await runPython(
      `shm = SharedMemory(sys.argv[1], create=True, size=100); untrack(shm)
shm.buf[:11] = b'from python'
shm.close()`,
      [name],
    );
    assert.equal(made.stderr, '');
    assert.equal(made.code, 0);
    const shm = new SharedMemory({ name });
    assert.equal(shm.size, 100);
    assert.equal(Buffer.from(shm.buf.subarray(0, 11)).toString(), 'from python');
    shm.buf.set(Buffer.from('from node'), 20);
    const read = await runPython(`shm = SharedMemory(sys.argv[1]); untrack(shm); print(bytes(shm.buf[20:29]).decode()); shm.close()`, [name]);
    assert.deepEqual([read.stderr, read.lines], ['', ['from node']]);
  });
});
