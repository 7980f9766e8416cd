// examples/seed/08-manager.ts as a user runs it (`node --import tsx <file>`): ten processes write
// into a manager's dict and list. The program imports 'multiproc' itself, which resolves to dist/
// (`npm test` builds first). It prints the dict and the list as Python's print() does; this test
// reads them back.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allGone } from './helpers/processes.ts';
import { killRuns, lines, runScript, taggedProcesses } from './helpers/spawn-script.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = 'examples/seed/08-manager.ts';
const timeout = 90_000;

before(() => {
  assert.ok(existsSync(`${root}/dist/managers/index.js`), "the examples import 'multiproc', which is dist/: run `npm run build` first (npm test does)");
});

after(() => killRuns());

/** A Python repr of an int or a single-quoted string (what the program prints) as a value. */
function scalar(text: string): number | string {
  const quoted = /^'(.*)'$/.exec(text);
  if (quoted) return quoted[1]!;
  assert.match(text, /^-?\d+$/, `not an int or a quoted string: ${text}`);
  return Number(text);
}

/** Python's repr of a dict of ints and strings, {0: '1', '2': 2}, as a Map. */
function parseDict(line: string): Map<number | string, number | string> {
  const body = /^\{(.*)\}$/.exec(line);
  assert.ok(body, `not a dict: ${line}`);
  return new Map(body[1]!.split(', ').map((entry) => {
    const [key, value] = entry.split(': ');
    return [scalar(key!), scalar(value!)];
  }));
}

/** Python's repr of a list of ints, [0, 1], as an array. */
function parseList(line: string): (number | string)[] {
  const body = /^\[(.*)\]$/.exec(line);
  assert.ok(body, `not a list: ${line}`);
  return body[1]!.split(', ').map(scalar);
}

describe('examples/seed/08-manager', () => {
  it('prints a dict with exactly the keys 0..9 (each \'1\') and \'2\' (2), and a list of 15: range(5) then 0..9 once each', { timeout }, async () => {
    const result = await runScript(file, [], { cwd: root });
    const left = taggedProcesses(result.tag);
    assert.ok(await allGone(left, 5000), `${file} left processes running: ${left.join(', ')}`);
    assert.equal(result.stderr, '', `${file} wrote to stderr`);
    assert.deepEqual([result.code, result.signal], [0, null]);

    const out = lines(result.stdout);
    assert.equal(out.length, 2, result.stdout);
    const d = parseDict(out[0]!);
    assert.equal(d.size, 11, out[0]);
    for (let n = 0; n < 10; n++) assert.equal(d.get(n), '1', `d[${n}]`);
    assert.equal(d.get('2'), 2, "d['2'] is the int 2: the string key '2' and the int key 2 are two keys");
    assert.equal(d.get(2), '1');

    const l = parseList(out[1]!);
    assert.equal(l.length, 15, out[1]);
    assert.deepEqual(l.slice(0, 5), [0, 1, 2, 3, 4]);
    assert.deepEqual((l.slice(5) as number[]).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
