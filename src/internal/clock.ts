// The library's clock: milliseconds on the monotonic clock, as performance.now() counts them but
// from another origin (compare its readings only with each other). The `performance` global costs
// a child 1.3 ms the first time it is touched (it loads perf_hooks and ten internal modules), and
// every pool worker and child touched it as it began to wait for its first message.

/** Milliseconds on CLOCK_MONOTONIC (exact to the nanosecond for the first 104 days of uptime). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
