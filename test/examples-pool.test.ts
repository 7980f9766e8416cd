// examples/seed/07-pool.ts as a user runs it (`node --import tsx <file>`): 100 tasks on Pool(5),
// each result handed to a callback in the main process. The program imports 'multiproc' itself,
// which resolves to dist/ (`npm test` builds first).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allGone } from './helpers/processes.ts';
import { killRuns, lines, runScript, taggedProcesses } from './helpers/spawn-script.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = 'examples/seed/07-pool.ts';
const timeout = 120_000;
const hundred = Array.from({ length: 100 }, (_, i) => i);

before(() => {
  assert.ok(existsSync(`${root}/dist/index.js`), "the examples import 'multiproc', which is dist/: run `npm run build` first (npm test does)");
});

after(() => killRuns());

describe('examples/seed/07-pool', () => {
  it('every task prints its i, every `HELLO i` reaches the callback (with `hello`), and at most 5 ran at once', { timeout }, async () => {
    const result = await runScript(file, [], { cwd: root });
    const left = taggedProcesses(result.tag);
    assert.ok(await allGone(left, 5000), `${file} left processes running: ${left.join(', ')}`);
    assert.equal(result.stderr, '', `${file} wrote to stderr`);
    assert.deepEqual([result.code, result.signal], [0, null]);

    const out = lines(result.stdout);
    assert.equal(out.length, 301, result.stdout);
    // Foo's print(i), from the workers.
    const printed = out.filter((line) => /^\d+$/.test(line)).map(Number);
    assert.deepEqual([...printed].sort((a, b) => a - b), hundred, 'each task printed its i once');
    // Bar's print(arg) and print("hello"), in the main process, once per result.
    const hellos = out.filter((line) => line.startsWith('HELLO ')).map((line) => Number(/^HELLO (\d+)$/.exec(line)?.[1]));
    assert.deepEqual([...hellos].sort((a, b) => a - b), hundred, 'the callback got every `HELLO i` once');
    assert.equal(out.filter((line) => line === 'hello').length, 100);
    // Every task had printed its i before its result reached the callback.
    for (const i of hundred) assert.ok(out.indexOf(String(i)) < out.indexOf(`HELLO ${i}`), `${i} printed before HELLO ${i}`);

    const peak = /^at most (\d+) tasks ran at once$/.exec(out.at(-1) ?? '');
    assert.ok(peak, `the last line reports the peak: ${out.at(-1)}`);
    const most = Number(peak[1]);
    assert.ok(most >= 1 && most <= 5, `Pool(5) ran ${most} tasks at once`);
  });
});
