// getLogger() and logToStderr() (Python's multiprocessing.get_logger() and log_to_stderr()): the
// library's log is silent until asked for; a handler gets records at or above the level; the
// stderr handler prints Python's `[LEVEL/processName] message`, once however often it is added,
// and processes and threads started afterwards log to their stderr at the level then in force.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { getLogger, type LogRecord } from '../src/index.ts';
import { backends } from './helpers/backends.ts';
import { killRuns, lines, runScript } from './helpers/spawn-script.ts';

const timeout = 120_000;
const script = fileURLToPath(new URL('./fixtures/scripts/log-to-stderr.ts', import.meta.url));

after(() => killRuns());

describe('getLogger() in this process', () => {
  it('is one logger, at WARNING until set; handlers get the records at or above the level', () => {
    const logger = getLogger();
    assert.equal(getLogger(), logger);
    assert.equal(logger.name, 'multiproc');
    const records: LogRecord[] = [];
    const handler = (record: LogRecord) => records.push(record);
    const level = logger.level;
    logger.addHandler(handler);
    logger.addHandler(handler);
    try {
      logger.setLevel('warning');
      logger.info('dropped');
      logger.warning('kept');
      logger.setLevel(5);
      assert.equal(logger.isEnabledFor('subdebug'), true);
      logger.subdebug('fine');
      logger.log(25, 'between');
      assert.deepEqual(
        records.map((r) => [r.levelName, r.level, r.message, r.processName, r.pid]),
        [
          ['WARNING', 30, 'kept', 'MainProcess', process.pid],
          ['SUBDEBUG', 5, 'fine', 'MainProcess', process.pid],
          ['SUBWARNING', 25, 'between', 'MainProcess', process.pid],
        ],
        'each record once, though the handler was added twice',
      );
      assert.throws(() => logger.setLevel('loud' as 'debug'), { code: 'ERR_MP_INVALID_ARGUMENT', message: /subdebug, debug, info/ });
      assert.throws(() => logger.addHandler('stderr' as never), { code: 'ERR_MP_INVALID_ARGUMENT' });
      const failing = () => {
        throw new Error('handler broke');
      };
      logger.addHandler(failing);
      const write = process.stderr.write;
      let printed = '';
      process.stderr.write = ((chunk: string) => ((printed += chunk), true)) as typeof process.stderr.write;
      try {
        logger.warning('still logged');
      } finally {
        process.stderr.write = write;
        logger.removeHandler(failing);
      }
      assert.match(printed, /--- multiproc: a log handler threw \(the record: WARNING still logged\) ---\nError: handler broke/);
      assert.equal(records.at(-1)?.message, 'still logged', 'the other handlers got it');
    } finally {
      logger.removeHandler(handler);
      logger.level = level;
    }
  });
});

for (const backend of backends) {
  describe(`logToStderr(), backend: ${backend}`, () => {
    it('prints the library log of the program and of the processes it starts, once per record', { timeout }, async () => {
      const run = await runScript(script, [backend]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), '[1,4,9]');
      const log = lines(run.stderr);
      const has = (pattern: RegExp) => assert.ok(log.some((line) => pattern.test(line)), `no line matches ${pattern}:\n${run.stderr}`);
      has(/^\[DEBUG\/MainProcess\] started Greeter \((pid|thread) \d+\)$/);
      has(/^\[INFO\/Greeter\] child process calling self\.run\(\)$/);
      assert.equal(log.filter((line) => line === '[INFO/Greeter] hello from the child').length, 1, 'one stderr handler, in the child too');
      has(/^\[INFO\/Greeter\] process exiting with exitcode 0$/);
      has(/^\[DEBUG\/MainProcess\] Greeter \((pid|thread) \d+\) ended with exitcode 0$/);
      has(/^\[DEBUG\/MainProcess\] added worker PoolWorker-\d+ \((pid|thread) \d+\)$/);
      has(/^\[DEBUG\/MainProcess\] recycling worker PoolWorker-\d+ \((pid|thread) \d+\) after 2 tasks$/);
      has(/^\[DEBUG\/PoolWorker-\d+\] worker exiting after 2 tasks$/);
      has(/^\[DEBUG\/MainProcess\] closing pool$/);
      has(/^\[INFO\/\S+\] manager serving at /);
      has(/^\[DEBUG\/MainProcess\] sending shutdown message to manager at /);
      has(/^\[DEBUG\/\S+\] manager received shutdown message$/);
      has(/^\[INFO\/Quiet\] hello from the child$/);
      assert.ok(!log.some((line) => /^\[DEBUG\/(MainProcess\] started Quiet|Quiet\])/.test(line)), 'after setLevel(info), no DEBUG line about Quiet, here or there');
      has(/^\[INFO\/MainProcess\] process shutting down$/);
      assert.deepEqual(log.filter((line) => !/^\[(SUBDEBUG|DEBUG|INFO|SUBWARNING|WARNING)\/[^\]]+\] /.test(line)), [], 'nothing else on stderr');
    });
  });
}
