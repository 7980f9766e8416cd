// Pools in whole programs, run as users run them (`node --import tsx <file>`), on both backends:
// an idle pool does not keep a program alive; Ctrl-C during a map ends the program and every
// worker without a hang; { progress: true } is silent when stdout is not a terminal and draws a
// bar on one (a pseudo-terminal from util-linux `script`).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from '../helpers/backends.ts';
import { TestChannel } from '../helpers/channel.ts';
import { allGone, killStrays } from '../helpers/processes.ts';
import { killRuns, runEnv, runScript, taggedProcesses } from '../helpers/spawn-script.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const script = (name: string) => fileURLToPath(new URL(`../fixtures/pool/scripts/${name}`, import.meta.url));
const timeout = 60_000;
let channel: TestChannel;
const programs: ChildProcess[] = [];

before(async () => {
  channel = await TestChannel.open();
});

after(async () => {
  for (const program of programs) if (program.exitCode === null && program.signalCode === null) program.kill('SIGKILL');
  killRuns();
  killStrays();
  await channel.close();
});

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const noTty = hasScript() ? false : 'util-linux `script` is not installed: no pseudo-terminal to draw the bar on';

/** Runs `node --import tsx <file> ...args` inside `script`, so that its stdout and stderr are a terminal. */
async function runOnTerminal(file: string, args: string[]): Promise<{ code: number | null; output: string; tag: string }> {
  const tag = randomUUID();
  const command = [process.execPath, '--import', 'tsx', file, ...args].map((word) => `'${word}'`).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: root, env: runEnv(tag, { COLUMNS: '120' }), stdio: ['ignore', 'pipe', 'pipe'] });
  programs.push(child);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output, tag };
}

forEachBackend((_ctx, backend) => {
  describe('a program with a Pool', () => {
    it('ends by itself after its last map when it never calls close(): an idle pool keeps nothing alive', { timeout }, async () => {
      const result = await runScript(script('idle-pool.ts'), [backend], { cwd: root });
      assert.equal(result.stderr, '');
      assert.deepEqual([result.code, result.signal], [0, null]);
      assert.equal(result.stdout, '[1,4,9]\n');
      const left = taggedProcesses(result.tag);
      assert.ok(await allGone(left, 5000), `workers left running: ${left.join(', ')}`);
    });

    for (const what of ['used', 'unused']) {
      it(`leaving an \`await using\` block of a Pool (${what}) waits for its workers, and the program goes on after it`, { timeout }, async () => {
        const result = await runScript(script('await-using.ts'), [backend, what], { cwd: root });
        assert.equal(result.stderr, '');
        // Exit code 13 was Node's "unsettled top-level await": the wait let the event loop empty.
        assert.deepEqual([result.code, result.signal], [0, null]);
        assert.equal(result.stdout, `${what === 'used' ? '9\n' : ''}after the block\n`);
        const left = taggedProcesses(result.tag);
        assert.ok(await allGone(left, 5000), `workers left running: ${left.join(', ')}`);
      });
    }

    it('a callback that throws does not break the pool: its error is an uncaught exception, and the pool goes on', { timeout }, async () => {
      const result = await runScript(script('throwing-callback.ts'), [backend], { cwd: root });
      assert.equal(result.stderr, '');
      assert.equal(result.code, 0);
      assert.deepEqual(result.stdout.split('\n').filter(Boolean).sort(), [
        'apply: 9',
        'get: 4',
        'joined',
        'map: [1,4,9]',
        'successful: false',
        'uncaught: callback broke',
        'uncaught: errorCallback broke',
        'uncaught: map callback broke',
      ]);
    });

    it('terminate() right after maxtasksperchild recycled a worker ends the pool cleanly', {
      timeout,
      // Guards a fixed crash: FATAL ERROR v8::FromJust in mp::Waiter::OnAsync (native/futex.cc)
      // when a wait completed in a worker thread that terminate() was stopping.
    }, async () => {
      const rounds = backend === 'thread' ? 8 : 3; // the crash came within 3 rounds; processes start slower
      const result = await runScript(script('terminate-after-recycle.ts'), [backend, String(rounds)], { cwd: root });
      assert.equal(result.stderr, '');
      assert.deepEqual([result.code, result.signal], [0, null]);
      assert.ok(result.stdout.endsWith(`round ${rounds - 1}\ndone\n`), result.stdout);
    });

    it('Ctrl-C during a map ends the program and all its workers, without a hang', { timeout }, async () => {
      const tag = randomUUID();
      const program = spawn(process.execPath, ['--import', 'tsx', script('ctrl-c.ts'), channel.path, backend], {
        cwd: root,
        env: runEnv(tag),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, as a shell gives a job
      });
      programs.push(program);
      let stderr = '';
      program.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = once(program, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      await Promise.all([channel.event('started', (m) => m.label === `${backend}:int-1`), channel.event('started', (m) => m.label === `${backend}:int-2`)]);
      // The workers, and whatever else the program started (tsx's esbuild service, say).
      const started = taggedProcesses(tag).filter((pid) => pid !== program.pid);
      if (backend === 'process') assert.ok(started.length >= 2, `at least two worker processes: ${started}`);
      process.kill(-(program.pid as number), 'SIGINT');
      const [code, signal] = await exited;
      assert.ok(signal === 'SIGINT' || code === 130, `ended by ${signal ?? code}; stderr: ${stderr}`);
      assert.ok(await allGone(started, 5000), `processes left running: ${started.filter((pid) => taggedProcesses(tag).includes(pid))}`);
      assert.deepEqual(taggedProcesses(tag), []);
      assert.equal(stderr, '');
    });
  });

  describe('{ progress: true }', () => {
    for (const method of ['map', 'imap'] as const) {
      it(`${method} prints nothing extra when stdout is not a terminal`, { timeout }, async () => {
        const result = await runScript(script('progress.ts'), [backend, method], { cwd: root });
        assert.deepEqual([result.code, result.stdout, result.stderr], [0, 'done 30\n', '']);
      });

      it(`${method} draws a progress bar on a terminal (items done, rate${method === 'map' ? ', ETA' : ''})`, { timeout, skip: noTty }, async () => {
        const { code, output, tag } = await runOnTerminal(script('progress.ts'), [backend, method]);
        assert.equal(code, 0, output);
        assert.match(output, /done 30/);
        if (method === 'map') assert.match(output, /100% \| 30\/30 items \| [\d.]+\/s \| ETA/, output);
        else assert.match(output, /30 items \| [\d.]+\/s/, output);
        assert.ok(await allGone(taggedProcesses(tag), 5000));
      });
    }
  });
});
