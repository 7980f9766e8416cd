// examples/seed/04-lock.ts as a user runs it (`node --import tsx <file>`): ten processes print
// under one Lock. The program imports 'multiproc' itself, which resolves to dist/ (`npm test`
// builds first).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allGone } from './helpers/processes.ts';
import { killRuns, lines, runScript, taggedProcesses } from './helpers/spawn-script.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = 'examples/seed/04-lock.ts';
const timeout = 60_000;

before(() => {
  assert.ok(existsSync(`${root}/dist/index.js`), "the examples import 'multiproc', which is dist/: run `npm run build` first (npm test does)");
});

after(() => killRuns());

describe('examples/seed/04-lock', () => {
  it('prints `hello world  i` once for each i in 0..9, each right after its own `begin i`: the lock let one process print at a time', { timeout }, async () => {
    const result = await runScript(file, [], { cwd: root });
    // Everything the program started ended with it (no event tells when a grandchild dies: allGone polls /proc).
    const left = taggedProcesses(result.tag);
    assert.ok(await allGone(left, 5000), `${file} left processes running: ${left.join(', ')}`);
    assert.equal(result.stderr, '', `${file} wrote to stderr`);
    assert.deepEqual([result.code, result.signal], [0, null]);

    const out = lines(result.stdout);
    assert.equal(out.length, 20, result.stdout);
    const order: number[] = [];
    for (let line = 0; line < out.length; line += 2) {
      const begin = /^begin (\d)$/.exec(out[line]!);
      assert.ok(begin, `line ${line + 1} should be a whole \`begin i\` line, got ${JSON.stringify(out[line])}\n${result.stdout}`);
      // Python's print('hello world ', i) puts its separator after the trailing space: two spaces.
      assert.equal(out[line + 1], `hello world  ${begin[1]}`, `another process printed while process ${begin[1]} held the lock:\n${result.stdout}`);
      order.push(Number(begin[1]));
    }
    assert.deepEqual([...order].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each process printed once');
  });
});
