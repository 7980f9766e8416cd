// pipe_rtt: bench_mp.py's b_pipe_rtt. Pipe(): the parent sends and awaits recv(), the child
// (targets.ts echo) echoes. SMALL = [1, 'x', {a: 2}]: 20,000 round trips after 1,000 warm-up,
// each timed; 1 MiB Buffer (Python: bytes(1 MiB)): 200 round trips after 10 warm-up.
// Latency depends on the CPU placement: run it unpinned and with --pinned (taskset -c 0), and
// compare with CPython in the same pinning.
// Peers, as ../shared/bench/peers/bench_peers.mjs: child_process.fork IPC ('advanced'
// serialization) and worker_threads postMessage, both echoing.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { echo } from '../targets.ts';
import { round, type Metrics, type Workload } from '../workload.ts';

const SMALL = [1, 'x', { a: 2 }];
const MiB = 1 << 20;
const SMALL_ROUNDS = 20_000;
const SMALL_WARM = 1_000;
const MIB_ROUNDS = 200;
const MIB_WARM = 10;

/** bench_mp.py's stats_us, from samples in ms: mean, median (upper middle) and p99 in µs. */
function statsUs(prefix: string, samplesMs: Float64Array): Metrics {
  const s = Float64Array.from(samplesMs).sort();
  const n = s.length;
  return {
    [`${prefix}_mean_us`]: round((s.reduce((a, b) => a + b, 0) / n) * 1e3, 2),
    [`${prefix}_median_us`]: round(s[n >> 1]! * 1e3, 2),
    [`${prefix}_p99_us`]: round(s[Math.min(n - 1, Math.floor(n * 0.99))]! * 1e3, 2),
  };
}

function sameBytes(a: unknown, length: number): void {
  if (!Buffer.isBuffer(a) || a.length !== length) throw new Error(`pipe_rtt: the echo is not a Buffer of ${length} bytes: ${String(a)}`);
}

// A peer channel: send(obj), and onmsg called with every echo.
interface Channel {
  send(m: unknown): void;
  onmsg: (m: unknown) => void;
  close(): Promise<unknown>;
}

function peerRounds(ch: Channel, payload: unknown, n: number, warm: number): Promise<Float64Array> {
  return new Promise((resolve) => {
    const ts = new Float64Array(n);
    let i = -warm;
    let t0 = 0;
    ch.onmsg = () => {
      if (i >= 0) ts[i] = performance.now() - t0;
      if (++i < n) {
        t0 = performance.now();
        ch.send(payload);
      } else resolve(ts);
    };
    t0 = performance.now();
    ch.send(payload);
  });
}

async function peerMetrics(ch: Channel): Promise<Metrics> {
  const m: Metrics = { small_rounds: SMALL_ROUNDS, mib_rounds: MIB_ROUNDS };
  Object.assign(m, statsUs('small', await peerRounds(ch, SMALL, SMALL_ROUNDS, SMALL_WARM)));
  Object.assign(m, statsUs('mib', await peerRounds(ch, Buffer.alloc(MiB), MIB_ROUNDS, MIB_WARM)));
  await ch.close();
  return m;
}

const workload: Workload = {
  key: 'pipe_rtt',
  describe: `Pipe(): parent send + await recv, child echoes; [1,'x',{a:2}] x ${SMALL_ROUNDS.toLocaleString('en')} after ${SMALL_WARM.toLocaleString('en')} warm-up; 1 MiB Buffer x ${MIB_ROUNDS} after ${MIB_WARM}`,
  cpython: { subcommand: 'pipe_rtt' },
  show: ['small_median_us', 'small_mean_us', 'small_p99_us', 'mib_median_us', 'mib_mean_us', 'mib_p99_us'],
  compare: ['small_median_us', 'small_p99_us', 'mib_median_us'],
  backends: ['process', 'thread'],

  async run({ mp, Process }) {
    const [a, b] = mp.Pipe();
    const p = new Process({ target: echo, args: [b] });
    p.start();
    try {
      const rounds = async (obj: unknown, n: number, warm: number, check: (echoed: unknown) => void): Promise<Float64Array> => {
        for (let i = 0; i < warm; i++) {
          a.send(obj);
          check(await a.recv());
        }
        const ts = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          a.send(obj);
          await a.recv();
          ts[i] = performance.now() - t0;
        }
        return ts;
      };
      const m: Metrics = { small_rounds: SMALL_ROUNDS, mib_rounds: MIB_ROUNDS };
      Object.assign(m, statsUs('small', await rounds(SMALL, SMALL_ROUNDS, SMALL_WARM, (e) => {
        if (JSON.stringify(e) !== JSON.stringify(SMALL)) throw new Error(`pipe_rtt: bad echo ${JSON.stringify(e)}`);
      })));
      Object.assign(m, statsUs('mib', await rounds(Buffer.alloc(MiB), MIB_ROUNDS, MIB_WARM, (e) => sameBytes(e, MiB))));
      a.send(null);
      await p.join();
      if (p.exitCode !== 0) throw new Error(`pipe_rtt: the echo child exited with ${p.exitCode}`);
      return m;
    } finally {
      if (p.isAlive()) p.kill();
      await p.join();
      a.close();
      b.close();
    }
  },

  peers: [
    {
      impl: `node-${process.versions.node}-ipc-advanced`,
      async run({ fixtures }) {
        const child = fork(join(fixtures, 'echo.mjs'), ['ipc'], { serialization: 'advanced', execArgv: [] });
        const ch: Channel = {
          send: (m) => child.send(m as object),
          onmsg: () => {},
          close: () => {
            child.disconnect();
            return once(child, 'exit');
          },
        };
        child.on('message', (m) => ch.onmsg(m));
        return peerMetrics(ch);
      },
    },
    {
      impl: `node-${process.versions.node}-worker_threads-postMessage`,
      async run({ fixtures }) {
        const worker = new Worker(join(fixtures, 'echo.mjs'));
        const ch: Channel = { send: (m) => worker.postMessage(m), onmsg: () => {}, close: () => worker.terminate() };
        worker.on('message', (m) => ch.onmsg(m));
        return peerMetrics(ch);
      },
    },
  ],
};

export default workload;
