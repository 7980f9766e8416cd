// Functions cross processes by reference: the parent finds (module URL, export name) for a target
// from the module's source or exports, refuses at once what cannot be referenced, and the child
// reports an explicit { module, name } that names nothing it can run.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { forEachBackend } from './helpers/backends.ts';
import { testFile } from './helpers/test-file.ts';
import { countSpawns, killRuns, lines, runScript } from './helpers/spawn-script.ts';
import { exportNameInSource, referenceKey, referenceOf } from '../src/internal/function-ref.ts';
import { activeChildren, type Context, type Process } from '../src/index.ts';
import { reportSelf } from './fixtures/targets.ts';
import {
  afterEverything,
  generatorTarget,
  listed,
  localSameName,
  renamedTricky,
  sameName,
  templateText,
  unexportedFunction,
} from './fixtures/tricky-exports.ts';

const timeout = 20_000;
const trickyUrl = new URL('./fixtures/tricky-exports.ts', import.meta.url).href;
const targetsUrl = new URL('./fixtures/targets.ts', import.meta.url).href;
// The end-of-file check of every test file (see reduction.test.ts): programs run by runScript() end first.
const file = testFile(killRuns);

describe('exportNameInSource()', () => {
  const cases: [title: string, source: string, local: string, exported: string | undefined][] = [
    ['export function', 'export function work() {}', 'work', 'work'],
    ['export async function', 'export async function work() {}', 'work', 'work'],
    ['export function* (star by the keyword)', 'export function* gen() {}', 'gen', 'gen'],
    ['export function * (star by the name)', 'export function *gen() {}', 'gen', 'gen'],
    ['export async function*', 'export async function* gen() {}', 'gen', 'gen'],
    ['export class', 'export class Worker extends Base {}', 'Worker', 'Worker'],
    ['export abstract class (TypeScript)', 'export abstract class Job {}', 'Job', 'Job'],
    ['export const arrow', 'export const work = async (n: number) => n;', 'work', 'work'],
    ['export let function expression', 'export let work = function () {};', 'work', 'work'],
    ['a $ in the name', 'export const $work = () => 0;', '$work', '$work'],
    ['indented export', '  export function work() {}', 'work', 'work'],
    ['export { a as b }', 'function a() {}\nexport { a as b };', 'a', 'b'],
    ['export { a } without spaces', 'function a() {}\nexport{a}', 'a', 'a'],
    ['export { f as default }', 'function f() {}\nexport { f as default };', 'f', 'default'],
    ['export { type T, f }', 'export { type T, f };', 'f', 'f'],
    ['a multi-line export list', 'export {\n  one,\n  a as b,\n  two\n};', 'a', 'b'],
    ['a multi-line list with trailing line comments', 'export {\n  one, // the first\n  two, // the second\n};', 'two', 'two'],
    ['a list with a block comment', 'export {\n  one /* first */,\n  a as b /* b */,\n};', 'a', 'b'],
    ['a string export name', 'export { a as "my name" };', 'a', 'my name'],
    ['export default function name', 'export default function work() {}', 'work', 'default'],
    ['export default async function name', 'export default async function work() {}', 'work', 'default'],
    ['export default class name', 'export default class Job {}', 'Job', 'default'],
    ['export default name;', 'function work() {}\nexport default work;', 'work', 'default'],
    ['export default name without a semicolon', 'function work() {}\nexport default work', 'work', 'default'],
    ['an anonymous default function', 'export default function () {}', 'default', 'default'],
    ['an anonymous default arrow', 'export default async (n) => n;', 'default', 'default'],
    ['no export of that name', 'export function workers() {}\nfunction work() {}', 'work', undefined],
    ['a re-export from another module is not this module\'s binding', 'export { work } from "./other.ts";', 'work', undefined],
    ['a line comment', '// export function work() {}', 'work', undefined],
    ['a comment after code', 'run(); // export function work() {}', 'work', undefined],
    ['a block comment', '/* export function work() {} */', 'work', undefined],
    ['a multi-line block comment', '/**\n * export function work() {}\n */', 'work', undefined],
    ['a JSDoc example', '/**\n * @example\n * export function work() {}\n */\nexport function other() {}', 'work', undefined],
    ['a template literal', 'const code = `\nexport function work() {}\n`;', 'work', undefined],
    ['a `/*` in a string does not hide what follows', "const glob = 'dist/*';\nexport function work() {}\n/** doc */", 'work', 'work'],
    ['a `/*` in a URL string', "const url = 'http://host/*';\nexport function work() {}\n/* end */", 'work', 'work'],
    ['a quote in a regular expression', "const q = /['\"`]/g;\nexport function work() {}\nconst s = 'x';", 'work', 'work'],
    ['`//` in a regular expression', 'const r = /\\/\\//;\nexport function work() {}', 'work', 'work'],
    ['a division', 'const half = a / 2 / b;\nexport function work() {}', 'work', 'work'],
    ['a nested template', 'const t = `${`${1}`}\nexport function fake() {}\n`;\nexport function work() {}', 'work', 'work'],
    ['an export line inside a nested template', 'const t = `${`${1}`}\nexport function fake() {}\n`;\nexport function work() {}', 'fake', undefined],
  ];
  for (const [title, source, local, exported] of cases) {
    it(`${title}: ${local} → ${exported ?? 'not exported'}`, () => {
      assert.equal(exportNameInSource(source, local), exported, source);
    });
  }

  it('reads a 1 MB module full of unclosed `/*` in strings in linear time (a quadratic scan took seconds)', () => {
    const source = `${'const a = "x/*"; const b = /[/]/; // c\n'.repeat(25_000)}export function work() {}\n`;
    const started = performance.now();
    assert.equal(exportNameInSource(source, 'work'), 'work');
    assert.ok(performance.now() - started < 3000, `took ${Math.round(performance.now() - started)} ms`);
  });
});

describe('referenceOf()', () => {
  it('finds each export of a module written to trip a naive reading', () => {
    // Found by name, each also carries a hash of its source, which the child checks.
    const named = (target: Function) => {
      const { module, name, ...rest } = referenceOf(target, 'test');
      assert.deepEqual(Object.keys(rest), ['sourceHash']);
      return { module, name };
    };
    assert.deepEqual(named(listed), { module: trickyUrl, name: 'listed' });
    assert.deepEqual(named(renamedTricky), { module: trickyUrl, name: 'renamedTricky' });
    assert.deepEqual(named(afterEverything), { module: trickyUrl, name: 'afterEverything' });
    assert.deepEqual(named(generatorTarget), { module: trickyUrl, name: 'generatorTarget' });
    assert.match(templateText, /export function onlyInATemplate/);
  });

  it('refuses a function that only a template literal "exports"', () => {
    assert.throws(() => referenceOf(unexportedFunction(), 'test'), { code: 'ERR_MP_TARGET_NOT_REFERENCEABLE', message: /onlyInATemplate .*not exported by its module \(file:.*tricky-exports\.ts\)/ });
  });

  // The source scan matches names: the parent cannot tell them apart synchronously. The child does
  // (below): the reference carries a hash of the function's source.
  it('a local function that shares its name with an export of its module gets a reference of its own', () => {
    const local = localSameName();
    assert.notEqual(local, sameName);
    assert.equal(referenceOf(local, 'test').name, 'sameName');
    assert.notEqual(referenceKey(referenceOf(local, 'test')), referenceKey(referenceOf(sameName, 'test')));
  });

  it('passes an explicit { module, name } through unchanged, without checking it', () => {
    assert.deepEqual(referenceOf({ module: '/abs/path.mjs', name: 'work' }, 'test'), { module: '/abs/path.mjs', name: 'work' });
  });

  it("refers to a function of Node's by the module that exports it, as Python pickles os.cpu_count (the shortest module name: path, not path/posix)", () => {
    assert.deepEqual(referenceOf(cpus, 'test'), { module: 'node:os', name: 'cpus' });
    assert.deepEqual(referenceOf(readFileSync, 'test'), { module: 'node:fs', name: 'readFileSync' });
    assert.deepEqual(referenceOf(posix.join, 'test'), { module: 'node:path', name: 'join' });
  });
});

/** A function defined inside this module's scope, returned as a closure. */
function makeClosure(n: number): () => number {
  return function closureTarget() {
    return n;
  };
}

/**
 * Asserts that creating and starting a Process with `make()` throws ERR_MP_TARGET_NOT_REFERENCEABLE
 * in the parent, matching `message`, and spawns nothing. The API says "the call that was given
 * it throws at once": new Process({ target }) for a target function, start() for a subclass.
 */
function assertNotReferenceable(make: () => Process, message: RegExp): void {
  const before = activeChildren().length;
  let made: Process | undefined;
  const spawns = countSpawns(() => {
    assert.throws(
      () => {
        made = make();
        made.start();
      },
      (error: NodeJS.ErrnoException) => {
        assert.ok(error instanceof TypeError, `expected a TypeError, got ${error}`);
        assert.equal(error.code, 'ERR_MP_TARGET_NOT_REFERENCEABLE');
        assert.match(error.message, /^(?:new Process\(\) \(its target\)|Process\.start\(\) \([\w-]+-[\d:]+'s (?:target|class \w+)\)): /);
        assert.match(error.message, message);
        // Every such message says how to fix it, both ways.
        assert.match(error.message, /export it from its module \(`export (?:function \w+\(\.\.\.\) \{\}|class \w+ \.\.\.)`\)/);
        assert.match(error.message, /or pass \{ module: import\.meta\.url, name: '\w+' \} naming an export/);
        return true;
      },
    );
  });
  assert.equal(spawns, 0, 'a child was spawned before the target was refused');
  assert.equal(activeChildren().length, before);
  assert.equal(made?.pid, undefined);
}

forEachBackend((ctx: Context, backend) => {
  describe('targets that cannot be referenced: a TypeError at once, in the parent, before anything is spawned', () => {
    it('an arrow in a local variable throws, naming it and the fix', { timeout }, () => {
      const localArrow = (n: number): number => n;
      assertNotReferenceable(() => new ctx.Process({ target: localArrow, args: [1] }), /: function localArrow cannot be sent to another process: it is not exported by its module \(file:.*function-ref\.test\.ts\)/);
    });

    it('an inline arrow throws, naming it by the property it was written in (`target`)', { timeout }, () => {
      assertNotReferenceable(() => new ctx.Process({ target: () => 0 }), /function target cannot be sent to another process: it is not exported/);
    });

    it('a nameless function throws, suggesting a name for the export', { timeout }, () => {
      const [nameless] = [() => 0];
      assertNotReferenceable(() => new ctx.Process({ target: nameless }), /function \(anonymous\) cannot be sent.*`export function work\(\.\.\.\) \{\}`.*name: 'work'/);
    });

    it('a closure throws, naming the inner function', { timeout }, () => {
      assertNotReferenceable(() => new ctx.Process({ target: makeClosure(3) }), /function closureTarget cannot be sent to another process: it is not exported/);
    });

    it('a bound function throws, saying to export the original and bind the values with partial()', { timeout }, () => {
      assertNotReferenceable(
        () => new ctx.Process({ target: reportSelf.bind(null, file.channel.path) }),
        /function bound reportSelf cannot be sent to another process: it is a bound function; export the original function and bind the values with partial\(original, \.\.\.values\) instead of bind\(\)\..*`export function reportSelf\(\.\.\.\) \{\}`/,
      );
    });

    it('a built-in like Math.max throws, saying it is defined in no module', { timeout }, () => {
      assertNotReferenceable(() => new ctx.Process({ target: Math.max }), /function max cannot be sent to another process: it is a built-in function, defined in no module/);
    });

    it('a function made by new Function() throws, saying it was defined by eval', { timeout }, () => {
      // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the point of the test
      const evaluated = new Function('return 1') as () => number;
      assertNotReferenceable(() => new ctx.Process({ target: evaluated }), /function anonymous cannot be sent to another process: it was defined by eval or in Node itself.*name: 'work'/);
    });

    it('a Process subclass that its module does not export throws, naming the class', { timeout }, () => {
      class LocalProcess extends ctx.Process {
        override run(): void {}
      }
      assertNotReferenceable(() => new LocalProcess(), /function LocalProcess cannot be sent to another process: it is not exported.*\(`export class LocalProcess \.\.\.`\)/);
    });

    it("a Barrier's action that is not exported throws at new Barrier(), not when the barrier is first sent", { timeout }, () => {
      const localAction = (): void => {};
      assert.throws(() => new ctx.Barrier(2, localAction), {
        name: 'TypeError',
        code: 'ERR_MP_TARGET_NOT_REFERENCEABLE',
        message: /^new Barrier\(\) \(its action\): function localAction cannot be sent to another process: it is not exported by its module/,
      });
    });

  });

  it("a function of Node's runs in the child as the export of its module (os.cpus)", { timeout }, async () => {
    const pool = new ctx.Pool(1);
    try {
      assert.equal(((await pool.apply(cpus)) as unknown[]).length, cpus().length);
    } finally {
      pool.close();
      await pool.join();
    }
  });

  describe('targets from a module written to trip a naive reading', () => {
    it('run in the child under their exported names', { timeout }, async () => {
      const ps = [listed, renamedTricky, afterEverything].map((target) => new ctx.Process({ target, args: [file.channel.path] }));
      for (const p of ps) p.start();
      const seen = await Promise.all(['listed', 'renamedInList', 'afterEverything'].map((name) => file.channel.event('tricky', (m) => m.name === name)));
      await Promise.all(ps.map((p) => p.join()));
      assert.deepEqual(ps.map((p) => p.exitCode), [0, 0, 0]);
      assert.deepEqual(seen[0], { event: 'tricky', name: 'listed', pattern: 'dist/*', half: 5, stripped: 'abc' });
    });
  });

  describe('a function that only shares the name of an export of its module', () => {
    it('fails its task with the reason, where the export itself runs, in the same pool', { timeout }, async () => {
      const pool = new ctx.Pool(1);
      try {
        assert.equal(await pool.apply(sameName), 'the export');
        await assert.rejects(pool.apply(localSameName()), {
          name: 'TypeError',
          code: 'ERR_MP_TARGET_NOT_REFERENCEABLE',
          message: /export 'sameName' is not the function that was sent to process \d+ under that name: its source differs\. The function sent was defined inside another function or block/,
        });
        assert.equal(await pool.apply(sameName), 'the export');
      } finally {
        pool.terminate();
        await pool.join();
      }
    });

    it('as a Process target: the child prints the reason and exits 1, running nothing', { timeout }, async () => {
      const script = fileURLToPath(new URL('./fixtures/scripts/shadowed-export.ts', import.meta.url));
      const run = await runScript(script, [backend]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(lines(run.stdout), ['shadowed exitCode=1', 'ran the export', 'the-export exitCode=0']);
      assert.match(run.stderr, /^Process shadowed:\nTypeError: .*tricky-exports\.ts's export 'sameName' is not the function that was sent to process \d+ under that name/m);
      assert.match(run.stderr, /code: 'ERR_MP_TARGET_NOT_REFERENCEABLE'/);
    });
  });

  describe('an explicit { module, name } the child cannot run', () => {
    it('a missing export, a non-function export or a missing module: the child prints the error naming module and name, and exits 1', { timeout }, async () => {
      const script = fileURLToPath(new URL('./fixtures/scripts/missing-export.ts', import.meta.url));
      const run = await runScript(script, [backend]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(lines(run.stdout), ['missing-export exitCode=1', 'not-a-function exitCode=1', 'missing-module exitCode=1']);
      const escaped = targetsUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(run.stderr, new RegExp(`^Process missing-export:\\nTypeError: ${escaped} has no export named 'noSuchExport' in process \\d+\\. Export the function or class under that name, or pass the right \\{ module, name \\}\\.`, 'm'));
      assert.match(run.stderr, /code: 'ERR_MP_EXPORT_NOT_FOUND'/);
      assert.match(run.stderr, new RegExp(`^Process not-a-function:\\nTypeError: ${escaped} exports 'notAFunction' as 42 \\(number\\), not a function; it cannot be not-a-function's target\\.`, 'm'));
      assert.match(run.stderr, /^Process missing-module:\n.*ERR_MODULE_NOT_FOUND.*no-such-module\.ts/m);
      assert.equal(run.stderr.match(/^Process /gm)?.length, 3, 'one report per child');
      assert.doesNotMatch(run.stderr, /Warning/);
    });
  });
});
