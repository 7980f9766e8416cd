// examples/seed/05-queue.ts and 06-pipe.ts as a user runs them (`node --import tsx <file>`): the
// seed's Queue and duplex Pipe programs. They import 'multiproc' itself, which resolves to dist/
// (`npm test` builds first).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allGone } from './helpers/processes.ts';
import { killRuns, lines, runScript, taggedProcesses, type RunResult } from './helpers/spawn-script.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const timeout = 60_000;

before(() => {
  assert.ok(existsSync(`${root}/dist/index.js`), "the examples import 'multiproc', which is dist/: run `npm run build` first (npm test does)");
});

after(() => killRuns());

/** Runs `file` to its exit and checks it ran clean: exit 0, nothing on stderr, nothing left running. */
async function runClean(file: string): Promise<RunResult> {
  const result = await runScript(file, [], { cwd: root });
  // Everything the program started ended with it (no event tells when a grandchild dies: allGone polls /proc).
  const left = taggedProcesses(result.tag);
  assert.ok(await allGone(left, 5000), `${file} left processes running: ${left.join(', ')}`);
  assert.equal(result.stderr, '', `${file} wrote to stderr`);
  assert.deepEqual([result.code, result.signal], [0, null], result.stdout);
  return result;
}

describe('examples/seed/05-queue', () => {
  it('the child prints `son process` and its id and puts 123 and chen; the parent prints `main process` and its id, then 123 and chen', { timeout }, async () => {
    const out = lines((await runClean('examples/seed/05-queue.ts')).stdout);
    assert.equal(out.length, 4, out.join('\n'));
    const main = out.findIndex((line) => line.startsWith('main process '));
    const son = out.findIndex((line) => line.startsWith('son process '));
    assert.ok(main >= 0 && son >= 0, out.join('\n'));
    const mainId = /^main process (\d+)#\d+$/.exec(out[main]!);
    const sonId = /^son process (\d+)#\d+$/.exec(out[son]!);
    assert.ok(mainId && sonId, out.join('\n'));
    assert.notEqual(out[main]!.slice('main process '.length), out[son]!.slice('son process '.length), 'as with Python\'s id(q), the two processes print different ids');
    assert.notEqual(mainId[1], sonId[1], 'the id names the process it was taken in');
    // What the order is sure of: each process's own lines in order, and the child's line before
    // the items the parent got from it.
    const got = out.filter((_, i) => i !== main && i !== son);
    assert.deepEqual(got, ['123', 'chen']);
    assert.ok(main < out.indexOf('123') && son < out.indexOf('123'), out.join('\n'));
  });
});

describe('examples/seed/06-pipe', () => {
  it('the parent prints what the child sent, [12, {name: chen}, hello]; the child prints `response 儿子你好!`', { timeout }, async () => {
    const out = lines((await runClean('examples/seed/06-pipe.ts')).stdout);
    assert.deepEqual(out, ["[ 12, { name: 'chen' }, 'hello' ]", 'response 儿子你好!']);
  });
});
