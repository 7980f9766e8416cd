#pragma once
#include <v8.h>

#include <cstdint>
#include <ctime>

namespace mp {
// CLOCK_MONOTONIC in ns: the deadlines of both asynchronous waiters (futex.cc, futex-uring.cc).
inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// futexWait(int32Array, index, expected, timeoutMs) -> 'ok' | 'not-equal' | 'timed-out' (blocks).
void FutexWait(const v8::FunctionCallbackInfo<v8::Value>& info);
// futexWake(int32Array, index, count) -> how many waiters were woken.
void FutexWake(const v8::FunctionCallbackInfo<v8::Value>& info);
// futexWaitAsync(int32Array, index, expected, timeoutMs, keepAlive = true, sticky = false)
//   -> Promise<'ok' | 'not-equal' | 'timed-out' | 'cancelled'>.
// Resolves 'ok' once the word no longer holds `expected`: a waker must change the word, then wake.
// `sticky`: the word is woken only with wake-all and is waited on again soon (a ring's counter):
// the waiter thread keeps watching it between waits, which saves waking that thread per wait
// (io_uring waits, futex-uring.cc, ignore it). A wake that leaves the word as it was does not end
// a wait, with either waiter.
void FutexWaitAsync(const v8::FunctionCallbackInfo<v8::Value>& info);
// futexCancel(promise.id): settles a pending asynchronous wait now, with 'cancelled'.
void FutexCancel(const v8::FunctionCallbackInfo<v8::Value>& info);
// schedYield(): sched_yield(2). On one CPU a waiter lets the thread it waits for run at once.
void SchedYield(const v8::FunctionCallbackInfo<v8::Value>& info);
}  // namespace mp
