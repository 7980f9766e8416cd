// queue_throughput: bench_mp.py's b_queue_throughput. 200,000 messages in total; producers put,
// consumers get until a null sentinel (one per producer, as many consumers as producers).
// Payloads: the int 12345 and DICT_MSG (~100 bytes pickled; the same object each time). Queue 1->1,
// Queue 2->2 (100,000 per producer), SimpleQueue 1->1. Timed from a Barrier release (all processes
// already running) to the last consumer receiving its sentinel; counts are checked.
// Producers `await q.put(msg)` (the idiomatic call, as Python's put()). Queue 1->1 is also run with
// the synchronous `q.putNowait(msg)` (`_putnowait` keys): the cost of the awaited put.

import { runGroup } from '../group.ts';
import type { JobName } from '../targets.ts';
import type { Metrics, OurContext, Workload } from '../workload.ts';

const TOTAL = 200_000;
const DICT_MSG = { id: 12345, name: 'sensor-0042', ok: true, value: 3.14159, tags: ['alpha', 'beta'], unit: 'ms' };
const PAYLOADS = [['int', 12345], ['dict100', DICT_MSG]] as const;
const CASES = [['Queue', 1], ['Queue', 2], ['SimpleQueue', 1]] as const;

const keys = CASES.flatMap(([kind, pairs]) => PAYLOADS.map(([name]) => `${kind}_${pairs}to${pairs}_${name}_msgs_per_s`));

const workload: Workload = {
  key: 'queue_throughput',
  describe: `${TOTAL.toLocaleString('en')} messages (int, ~100-byte dict): Queue 1->1, 2->2, SimpleQueue 1->1; Barrier release -> last sentinel`,
  cpython: { subcommand: 'queue_throughput' },
  show: keys,
  compare: keys,
  backends: ['process', 'thread'],
  // 8 runs of 200,000 messages, each starting 2-4 processes: over 100 s on a busy 2-CPU machine.
  timeoutS: 600,

  async run(context) {
    const m: Metrics = { messages: TOTAL };
    for (const nowait of [false, true]) {
      for (const [kind, pairs] of CASES) {
        if (nowait && (kind !== 'Queue' || pairs !== 1)) continue;
        for (const [name, msg] of PAYLOADS) {
          const rate = await oneCase(context, kind, pairs, msg, nowait);
          m[`${kind}_${pairs}to${pairs}_${name}${nowait ? '_putnowait' : ''}_msgs_per_s`] = rate;
        }
      }
    }
    return m;
  },
};

async function oneCase(context: OurContext, kind: 'Queue' | 'SimpleQueue', pairs: number, msg: unknown, nowait: boolean): Promise<number> {
  const q = kind === 'Queue' ? new context.mp.Queue() : new context.mp.SimpleQueue();
  const jobs: [JobName, unknown[]][] = [];
  for (let i = 0; i < pairs; i++) jobs.push(['producer', [q, TOTAL / pairs, msg, nowait]]);
  for (let i = 0; i < pairs; i++) jobs.push(['consumer', [q]]);
  const { results, secs } = await runGroup(context, jobs);
  const got = (results.slice(pairs) as number[]).reduce((a, b) => a + b, 0);
  if (got !== TOTAL) throw new Error(`queue_throughput: ${kind} ${pairs}->${pairs}: consumers got ${got} of ${TOTAL} (${JSON.stringify(results)})`);
  if (!q.empty()) throw new Error(`queue_throughput: ${kind} ${pairs}->${pairs}: the queue is not empty at the end`);
  return Math.round(TOTAL / secs);
}

export default workload;
