#!/usr/bin/env python3
# Verbatim copy of ../shared/bench/python/bench_mp.py (the CPython 3.11 multiprocessing anchor of
# ../shared/bench/README.md); only this comment block was added. bench/run.ts runs it in the same
# run as our workloads, so that ours/CPython ratios come from one run, and warns when the shared
# original has changed. Do not edit: copy the original again (keeping this block) instead.
"""Anchor benchmarks for CPython's `multiprocessing` (reference numbers for the Node port).

Usage:  python3 bench_mp.py {process_start|pipe_rtt|queue_throughput|pool_map|
                              manager_ops|lock|shared_memory|all}... [--methods spawn,fork]

Each subcommand prints one JSON line per start method:
  {"bench": ..., "impl": "cpython-3.11-multiprocessing", "start_method": ..., <metrics>}
"cpus_allowed" is the CPU affinity it ran with (e.g. "0" under `taskset -c 0`).
Units are in the key names (_ms, _us, _ns, _per_s). Fixed workloads:

  process_start     Process(target=noop): start() -> join() returned, 30 runs after 1 warm-up
                    (spawn, fork, forkserver).
  pipe_rtt          Pipe(): parent send/recv, child echoes (recv -> send). SMALL = [1,'x',{'a':2}]:
                    20,000 round trips after 1,000 warm-up, each timed; also 1 MiB `bytes`
                    (bytes(1<<20)): 200 round trips after 10 warm-up.
  queue_throughput  200,000 messages total, producers put, consumers get until a None sentinel.
                    Payloads: int (the constant 12345) and DICT_MSG (~100 bytes pickled, the same
                    object each time). Queue 1->1, Queue 2->2 (100,000 per producer), SimpleQueue 1->1.
                    Timed from a Barrier release (all processes already running) to the last
                    consumer receiving its sentinel; counts are checked.
  pool_map          Pool(2): startup = Pool(2) + apply(noop) (first result) and + close()/join()
                    (median of 10); map(square, range(1_000_000)) default chunksize and chunksize
                    10_000; 20,000 apply_async(square, (i,)) submitted then all get(); imap(square,
                    range(20_000), chunksize=1). Results are checked.
  manager_ops       Manager() start and shutdown (median of 5). A child process does 20,000
                    d['k<i>'] = i, then 20,000 d['k<i>'] reads on a Manager().dict(), then 20,000
                    Manager().list().append(i). Sizes are checked.
  lock              Lock(): 1,000,000 acquire()+release() in one process (loop included).
                    Value('i'): 2 processes x 200,000 `with v.get_lock(): v.value += 1`, from a Barrier
                    release to the last one finishing; the final count must be exactly 400,000.
                    Also the same 200,000 increments in the parent alone (uncontended). Note that
                    get_lock() is an RLock and each v.value read/write takes it again.
  shared_memory     SharedMemory(create=True, size=1 MiB), attach by name, close both, unlink;
                    1,000 iterations after 20 warm-up, in one process (start method irrelevant).

Every line also has wall_s and other_cpu_s: CPU seconds that processes outside this benchmark
used on the machine meanwhile (from /proc; forkserver/resource-tracker children count as
"other" too). A shared machine makes the numbers noisy: prefer lines with a small other_cpu_s.

Clocks: time.perf_counter(_ns) in one process; time.monotonic() (CLOCK_MONOTONIC, system-wide)
when a duration spans processes. Top-level imports are kept minimal because `spawn` children
re-import this file.
"""
import json
import os
import sys
import time
import multiprocessing as mp

IMPL = f"cpython-{sys.version_info[0]}.{sys.version_info[1]}-multiprocessing"
SMALL = [1, 'x', {'a': 2}]
DICT_MSG = {'id': 12345, 'name': 'sensor-0042', 'ok': True, 'value': 3.14159,
            'tags': ['alpha', 'beta'], 'unit': 'ms'}
MiB = 1 << 20


def cpu_snapshot():
    """(monotonic s, CPU s busy on the whole machine, CPU s of this process + reaped children)."""
    hz = os.sysconf("SC_CLK_TCK")
    f = open("/proc/stat").readline().split()[1:]
    st = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    return (time.monotonic(), sum(int(f[i]) for i in (0, 1, 2, 5, 6)) / hz,  # user nice sys irq softirq
            sum(int(x) for x in st[11:15]) / hz)  # utime stime cutime cstime


_snap = None


def emit(bench, start_method, **metrics):
    """Print one result line. other_cpu_s = CPU used by *other* processes on the machine since the
    previous line (noise indicator; > ~0.2 s per 10 s of wall_s means the line is suspect)."""
    global _snap
    t, busy, own = cpu_snapshot()
    noise = {"wall_s": round(t - _snap[0], 1),
             "other_cpu_s": round(max(0.0, (busy - _snap[1]) - (own - _snap[2])), 2)}
    pinned = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Cpus_allowed_list")]
    print(json.dumps({"bench": bench, "impl": IMPL, "start_method": start_method,
                      "python": sys.version.split()[0], "cpus": os.cpu_count(),
                      "cpus_allowed": pinned[0], **metrics, **noise}), flush=True)
    _snap = cpu_snapshot()


def stats_us(samples_ns):
    s = sorted(samples_ns)
    n = len(s)
    return {"mean_us": round(sum(s) / n / 1e3, 2), "median_us": round(s[n // 2] / 1e3, 2),
            "p99_us": round(s[min(n - 1, int(n * 0.99))] / 1e3, 2)}


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


# ---- functions run in child processes (top level so `spawn` can pickle them) ----
def noop(*_):
    return None


def square(x):
    return x * x


def echo(conn):
    while True:
        obj = conn.recv()
        if obj is None:
            return
        conn.send(obj)


def producer(q, n, msg):
    put = q.put
    for _ in range(n):
        put(msg)
    put(None)  # one sentinel per producer; there are as many consumers as producers
    return n


def consumer(q):
    get, n = q.get, 0
    while get() is not None:
        n += 1
    return n


def manager_child(d, lst, n):
    keys = [f"k{i}" for i in range(n)]
    t0 = time.perf_counter()
    for i, k in enumerate(keys):
        d[k] = i
    t1 = time.perf_counter()
    for k in keys:
        d[k]
    t2 = time.perf_counter()
    for i in range(n):
        lst.append(i)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def lock_incr(v, n):
    lk = v.get_lock()
    for _ in range(n):
        with lk:
            v.value += 1
    return n


def _timed(barrier, out, fn, args):
    barrier.wait()
    r = fn(*args)
    out.put((r, time.monotonic()))


def run_group(ctx, jobs):
    """Run each (fn, args) in its own process; all start work at one Barrier release.
    Returns (results, seconds from the release to the last job finishing)."""
    barrier, out = ctx.Barrier(len(jobs) + 1), ctx.SimpleQueue()
    procs = [ctx.Process(target=_timed, args=(barrier, out, fn, args)) for fn, args in jobs]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.monotonic()
    res = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return [r for r, _ in res], max(t for _, t in res) - t0


# ---- benchmarks ----
def b_process_start(method):
    ctx = mp.get_context(method)
    p = ctx.Process(target=noop)  # warm-up (starts the forkserver / resource tracker)
    p.start()
    p.join()
    ts = []
    for _ in range(30):
        t0 = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        ts.append((time.perf_counter() - t0) * 1e3)
    emit("process_start", method, n=30, median_ms=round(median(ts), 3),
         min_ms=round(min(ts), 3), max_ms=round(max(ts), 3))


def b_pipe_rtt(method):
    ctx = mp.get_context(method)
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b,))
    p.start()
    pc = time.perf_counter_ns

    def rounds(obj, n, warm):
        for _ in range(warm):
            a.send(obj)
            a.recv()
        ts = []
        for _ in range(n):
            t0 = pc()
            a.send(obj)
            a.recv()
            ts.append(pc() - t0)
        return stats_us(ts)

    small = rounds(SMALL, 20_000, 1_000)
    big = rounds(bytes(MiB), 200, 10)
    a.send(None)
    p.join()
    emit("pipe_rtt", method, small_rounds=20_000, mib_rounds=200,
         **{f"small_{k}": v for k, v in small.items()}, **{f"mib_{k}": v for k, v in big.items()})


def b_queue_throughput(method):
    ctx = mp.get_context(method)
    total, out = 200_000, {}
    for kind in ("Queue", "SimpleQueue"):
        for pairs in ((1, 2) if kind == "Queue" else (1,)):
            for pname, msg in (("int", 12345), ("dict100", DICT_MSG)):
                q = getattr(ctx, kind)()
                jobs = [(producer, (q, total // pairs, msg)) for _ in range(pairs)]
                jobs += [(consumer, (q,)) for _ in range(pairs)]
                res, secs = run_group(ctx, jobs)
                assert sum(res[pairs:]) == total, res
                out[f"{kind}_{pairs}to{pairs}_{pname}_msgs_per_s"] = round(total / secs)
    emit("queue_throughput", method, messages=total, **out)


def b_pool_map(method):
    ctx = mp.get_context(method)
    first, whole = [], []
    for _ in range(10):
        t0 = time.perf_counter()
        pool = ctx.Pool(2)
        pool.apply(noop)
        t1 = time.perf_counter()
        pool.close()
        pool.join()
        first.append((t1 - t0) * 1e3)
        whole.append((time.perf_counter() - t0) * 1e3)
    N, T = 1_000_000, 20_000
    expect = (N - 1) * N * (2 * N - 1) // 6
    m = {"startup_first_result_ms": round(median(first), 2),
         "startup_shutdown_ms": round(median(whole), 2)}
    pool = ctx.Pool(2)
    pool.map(noop, range(2), chunksize=1)  # warm-up
    for key, cs in (("map_default_items_per_s", None), ("map_chunk10k_items_per_s", 10_000)):
        t0 = time.perf_counter()
        r = pool.map(square, range(N), chunksize=cs)
        m[key] = round(N / (time.perf_counter() - t0))
        assert len(r) == N and sum(r) == expect
    t0 = time.perf_counter()
    rs = [pool.apply_async(square, (i,)) for i in range(T)]
    vals = [r.get() for r in rs]
    m["tiny_tasks_per_s"] = round(T / (time.perf_counter() - t0))
    assert vals[-1] == (T - 1) ** 2
    t0 = time.perf_counter()
    s = sum(pool.imap(square, range(T), chunksize=1))
    m["imap_chunk1_items_per_s"] = round(T / (time.perf_counter() - t0))
    assert s == (T - 1) * T * (2 * T - 1) // 6
    pool.close()
    pool.join()
    emit("pool_map", method, workers=2, map_items=N, tiny_tasks=T,
         map_default_chunksize=-(-N // (2 * 4)), **m)


def b_manager_ops(method):
    ctx = mp.get_context(method)
    starts, stops = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        mgr = ctx.Manager()
        t1 = time.perf_counter()
        mgr.shutdown()
        starts.append((t1 - t0) * 1e3)
        stops.append((time.perf_counter() - t1) * 1e3)
    n = 20_000
    with ctx.Manager() as mgr:
        d, lst = mgr.dict(), mgr.list()
        [(t_set, t_get, t_app)], _ = run_group(ctx, [(manager_child, (d, lst, n))])
        assert len(d) == n and len(lst) == n and d["k7"] == 7
    emit("manager_ops", method, ops=n, manager_start_ms=round(median(starts), 2),
         manager_shutdown_ms=round(median(stops), 2), dict_set_us=round(t_set / n * 1e6, 2),
         dict_get_us=round(t_get / n * 1e6, 2), list_append_us=round(t_app / n * 1e6, 2))


def b_lock(method):
    ctx = mp.get_context(method)
    lock, n = ctx.Lock(), 1_000_000
    acq, rel = lock.acquire, lock.release
    t0 = time.perf_counter_ns()
    for _ in range(n):
        acq()
        rel()
    uncontended = (time.perf_counter_ns() - t0) / n
    per, v = 200_000, ctx.Value('i', 0)
    t0 = time.perf_counter_ns()
    lock_incr(v, per)
    single = (time.perf_counter_ns() - t0) / per
    v.value = 0
    _, secs = run_group(ctx, [(lock_incr, (v, per))] * 2)
    assert v.value == 2 * per, v.value
    emit("lock", method, uncontended_ops=n, lock_acquire_release_ns=round(uncontended, 1),
         value_incr_1proc_ns=round(single, 1), contended_procs=2, contended_incr_per_proc=per,
         contended_wall_ms=round(secs * 1e3, 1), contended_ops_per_s=round(2 * per / secs),
         count_exact=v.value == 2 * per)


def b_shared_memory(_method):
    from multiprocessing.shared_memory import SharedMemory
    pc, phases = time.perf_counter_ns, {"create": [], "attach": [], "close": [], "unlink": [],
                                        "total": []}
    for i in range(1_020):
        t0 = pc()
        a = SharedMemory(create=True, size=MiB)
        t1 = pc()
        b = SharedMemory(name=a.name)
        t2 = pc()
        b.close()
        a.close()
        t3 = pc()
        a.unlink()
        t4 = pc()
        if i >= 20:
            for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                phases[k].append(dt)
    emit("shared_memory", "n/a", iterations=1_000, size_bytes=MiB,
         **{f"{k}_median_us": round(median(v) / 1e3, 2) for k, v in phases.items()},
         total_mean_us=round(sum(phases["total"]) / 1e3 / len(phases["total"]), 2))


BENCHES = {"process_start": b_process_start, "pipe_rtt": b_pipe_rtt,
           "queue_throughput": b_queue_throughput, "pool_map": b_pool_map,
           "manager_ops": b_manager_ops, "lock": b_lock, "shared_memory": b_shared_memory}


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bench", nargs="+", choices=[*BENCHES, "all"])
    ap.add_argument("--methods", default="spawn,fork",
                    help="start methods (process_start always adds forkserver)")
    args = ap.parse_args()
    global _snap
    _snap = cpu_snapshot()
    methods = args.methods.split(",")
    for name in (BENCHES if "all" in args.bench else args.bench):
        if name == "shared_memory":
            ms = ["n/a"]
        elif name == "process_start":
            ms = methods + [m for m in ("forkserver",) if m not in methods]
        else:
            ms = methods
        for m in ms:
            BENCHES[name](m)


if __name__ == "__main__":
    main()
