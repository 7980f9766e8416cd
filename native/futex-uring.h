#pragma once
#include <v8.h>

#include <cstdint>
#include <memory>

namespace mp {
// Asynchronous futex waits through io_uring (futex-uring.cc), where the kernel has them.
// UringWaitAsync: false when this thread uses the waiter thread instead (futex.cc); else it has
// set the call's return value (a Promise) or thrown.
bool UringWaitAsync(const v8::FunctionCallbackInfo<v8::Value>& info, uint32_t* addr, uint32_t expected, int64_t timeout_ns, std::shared_ptr<v8::BackingStore> store, bool keep_alive);
// UringCancel: false when this thread's waits are not io_uring's.
bool UringCancel(uint64_t id);
// futexWaiter() -> 'io_uring' | 'thread': how this thread's asynchronous waits wait.
void FutexWaiter(const v8::FunctionCallbackInfo<v8::Value>& info);
}  // namespace mp
