// Futex wait and wake on a 32-bit word of shared memory, across processes (the shared, not the
// _PRIVATE, futex operations: V8's Atomics.wait/notify do not cross processes).
//
// Asynchronous waits go through io_uring where the kernel can (futex-uring.cc); this file's waiter
// thread serves the threads where it cannot. Neither uses libuv's thread pool (four waits would
// starve it, and a pending one makes process.exit() hang). Each environment has one waiter
// thread that sleeps in futex_waitv (Linux 5.16+) on the words it watches plus a control word, and hands results back to the event
// loop through a uv_async_t. futex_waitv reports a single woken index, so the thread re-checks
// every word after each wake: a wait completes when its word no longer holds the expected value.
//
// The thread watches addresses, armed with each word's value of the moment: any later FUTEX_WAKE
// on the address reaches it, whatever value a JS wait expects. So a new wait on a word that is
// already watched needs no poke of the thread (a futex wake and a context switch, per wait).
// Words of a `sticky` wait (a ring's counters, woken with wake-all) stay watched for a while after
// their waits end, since the next wait on them is coming; a lock's words do not, because a
// thread that watched them with no wait pending could swallow a wake-one meant for a waiter. It
// still does between a cancel and its next pass; a wake-one that it took there is passed on (PassOn).
#include <sched.h>
#include "futex.h"
#include "futex-uring.h"
#include "errors.h"

#include <node.h>
#include <uv.h>
#include <dlfcn.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif

namespace mp {

struct FutexWaitv {  // struct futex_waitv of <linux/futex.h> (5.16+), spelled out for older headers
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};

// This library must stay mapped until the process ends. Node unloads an addon with the last
// environment that loaded it (a worker thread's, when only that worker used it), but V8 releases
// that worker's SharedArrayBuffers later, at its isolate's teardown, and their deleter (shm.cc's
// Unmap) lives here: without this, a worker that used shared memory alone crashed the process as it
// exited. RTLD_NODELETE on the already-loaded library makes every later dlclose() leave it mapped.
static bool KeepLoaded() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&KeepLoaded), &info) == 0 || info.dli_fname == nullptr) return false;
  return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
}
[[maybe_unused]] static const bool kept_loaded = KeepLoaded();

static const size_t kMaxWaitv = 128;  // the kernel's FUTEX_WAITV_MAX
// With more distinct words pending than one futex_waitv call can watch, the thread also wakes this
// often to re-check the words it could not watch (a wake on those does not reach it).
static const int64_t kOverflowRecheckNs = 2 * 1000 * 1000;
// How long a sticky word stays watched after its last wait ended.
static const int64_t kStickyNs = 1000 * 1000 * 1000;

static timespec ToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  return ts;
}

static long Futex(uint32_t* addr, int op, uint32_t value, const timespec* timeout) {
  return syscall(SYS_futex, addr, op, value, timeout, nullptr, 0);
}

// Resolves the int32 array argument and index to the word's address; throws and returns null on misuse.
static uint32_t* WordAddress(const v8::FunctionCallbackInfo<v8::Value>& info, std::shared_ptr<v8::BackingStore>* store) {
  v8::Isolate* isolate = info.GetIsolate();
  if (!info[0]->IsInt32Array() || !info[1]->IsUint32()) {
    ThrowTypeError(isolate, "expected (Int32Array over a SharedArrayBuffer, index)");
    return nullptr;
  }
  v8::Local<v8::Int32Array> array = info[0].As<v8::Int32Array>();
  uint32_t index = info[1].As<v8::Uint32>()->Value();
  if (index >= array->Length()) {
    ThrowTypeError(isolate, "futex index out of range");
    return nullptr;
  }
  v8::Local<v8::ArrayBuffer> buffer = array->Buffer();
  std::shared_ptr<v8::BackingStore> backing = buffer->GetBackingStore();
  if (!backing->IsShared()) {
    ThrowTypeError(isolate, "futex words must live in a SharedArrayBuffer");
    return nullptr;
  }
  if (store) *store = backing;
  char* base = static_cast<char*>(backing->Data()) + array->ByteOffset();
  return reinterpret_cast<uint32_t*>(base) + index;
}

// A timeout argument in ms: undefined, Infinity or a negative number mean "for ever" (-1).
static int64_t TimeoutNs(v8::Local<v8::Value> value) {
  if (!value->IsNumber()) return -1;
  double ms = value.As<v8::Number>()->Value();
  if (std::isnan(ms) || std::isinf(ms) || ms < 0) return -1;
  return static_cast<int64_t>(ms * 1e6);
}

void FutexWait(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  uint32_t* addr = WordAddress(info, nullptr);
  if (addr == nullptr) return;
  uint32_t expected = static_cast<uint32_t>(info[2]->Int32Value(isolate->GetCurrentContext()).FromMaybe(0));
  int64_t timeout = TimeoutNs(info[3]);
  int64_t deadline = timeout < 0 ? -1 : NowNs() + timeout;
  const char* result = "ok";
  for (;;) {
    timespec relative;
    const timespec* ts = nullptr;
    if (deadline >= 0) {
      int64_t left = deadline - NowNs();
      if (left <= 0) {
        result = "timed-out";
        break;
      }
      relative = ToTimespec(left);
      ts = &relative;
    }
    if (Futex(addr, FUTEX_WAIT, expected, ts) == 0) break;
    if (errno == EAGAIN) {
      result = "not-equal";
      break;
    }
    if (errno == ETIMEDOUT) {
      result = "timed-out";
      break;
    }
    if (errno != EINTR) return ThrowErrno(isolate, errno, "futex", "FUTEX_WAIT");
  }
  info.GetReturnValue().Set(v8::String::NewFromUtf8(isolate, result).ToLocalChecked());
}

void FutexWake(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  uint32_t* addr = WordAddress(info, nullptr);
  if (addr == nullptr) return;
  int32_t count = info[2]->IsNumber() ? info[2]->Int32Value(isolate->GetCurrentContext()).FromMaybe(1) : INT32_MAX;
  long woken = Futex(addr, FUTEX_WAKE, static_cast<uint32_t>(count < 0 ? INT32_MAX : count), nullptr);
  if (woken < 0) return ThrowErrno(isolate, errno, "futex", "FUTEX_WAKE");
  info.GetReturnValue().Set(static_cast<int32_t>(woken));
}

// schedYield(): gives this CPU to another runnable thread, if there is one (sched_yield).
void SchedYield(const v8::FunctionCallbackInfo<v8::Value>&) { sched_yield(); }

// ---- asynchronous waits -------------------------------------------------------------------

struct PendingWait {
  uint64_t id;
  uint32_t* addr;
  uint32_t expected;
  int64_t deadline;  // CLOCK_MONOTONIC ns, or -1
  std::shared_ptr<v8::BackingStore> store;  // keeps the mapping alive while the thread watches it
};

// An address the thread watches. `store` keeps the mapping alive while it does.
struct Watch {
  uint32_t* addr;
  std::shared_ptr<v8::BackingStore> store;
  bool sticky;
  int64_t last_used;  // CLOCK_MONOTONIC ns of the last wait on it
};

struct Completion {
  uint64_t id;
  const char* result;
};

class Waiter;
// One waiter per JS thread (the main thread and each worker run their own environment).
static thread_local Waiter* waiter = nullptr;

class Waiter {
 public:
  Waiter(v8::Isolate* isolate, v8::Local<v8::Context> context) : isolate_(isolate), context_(isolate, context) {
    uv_loop_t* loop = node::GetCurrentEventLoop(isolate);
    uv_async_init(loop, &async_, OnAsync);
    async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
    // The asynchronous kind of cleanup hook: the environment waits until async_ is closed. With the
    // synchronous kind, a worker thread could unload this addon before the close callback ran (a
    // crash when only that worker had loaded it).
    cleanup_hook_ = node::AddEnvironmentCleanupHook(isolate, Cleanup, this);
  }

  // keep_alive: whether this wait keeps the event loop (and so the process) alive, as a pending
  // timer does; a background wait that must not hold the process open passes false.
  v8::Local<v8::Promise> Add(uint32_t* addr, uint32_t expected, int64_t timeout, std::shared_ptr<v8::BackingStore> store, bool keep_alive, bool sticky) {
    v8::Local<v8::Context> context = context_.Get(isolate_);
    v8::Local<v8::Promise::Resolver> resolver = v8::Promise::Resolver::New(context).ToLocalChecked();
    uint64_t id = ++next_id_;
    resolvers_.emplace(id, Pending{v8::Global<v8::Promise::Resolver>(isolate_, resolver), keep_alive});
    if (keep_alive) Ref(+1);
    bool poke = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Checked again under the lock: a change since the caller's check may already have woken
      // the thread, which then re-armed with the new value and would sleep through this wait.
      if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected) {
        resolvers_.erase(id);
        if (keep_alive) Ref(-1);
        resolver->Resolve(context, v8::String::NewFromUtf8Literal(isolate_, "not-equal")).Check();
        return resolver->GetPromise();
      }
      int64_t now = NowNs();
      int64_t deadline = timeout < 0 ? -1 : now + timeout;
      Watch* watch = Find(addr);
      if (watch == nullptr) {
        watches_.push_back({addr, store, sticky, now});
        poke = true;  // the thread must add the address to its futex_waitv
      } else {
        watch->sticky = watch->sticky || sticky;
        watch->last_used = now;
        poke = !armed_.count(addr);  // watched, but not in the thread's current futex_waitv
      }
      if (deadline >= 0 && (armed_deadline_ < 0 || deadline < armed_deadline_)) poke = true;  // it must wake sooner
      pending_.push_back({id, addr, expected, deadline, std::move(store)});
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    if (poke) Poke();
    v8::Local<v8::Promise> promise = resolver->GetPromise();
    promise->Set(context, v8::String::NewFromUtf8Literal(isolate_, "id"), v8::Number::New(isolate_, static_cast<double>(id))).Check();
    return promise;
  }

  // Ends a pending wait now with 'cancelled' (an AbortSignal fired). A wait that already completed
  // is left alone: its result is on its way to the event loop.
  void Cancel(uint64_t id) {
    bool removed = false;
    bool poke = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = 0; i < pending_.size(); i++) {
        if (pending_[i].id != id) continue;
        uint32_t* addr = pending_[i].addr;
        pending_[i] = std::move(pending_.back());
        pending_.pop_back();
        removed = true;
        // A non-sticky word must leave the thread's futex_waitv now that no wait needs it.
        Watch* watch = Find(addr);
        poke = watch == nullptr || !watch->sticky;
        // Until the thread wakes, it still sleeps on the word: a wake-one meant for a waiter
        // elsewhere may reach it (or reached it just now), and Run() passes it on.
        if (poke) cancelled_.push_back(addr);
        break;
      }
    }
    auto found = resolvers_.find(id);
    if (!removed || found == resolvers_.end()) return;
    v8::Local<v8::Context> context = context_.Get(isolate_);
    v8::Local<v8::Promise::Resolver> resolver = found->second.resolver.Get(isolate_);
    if (found->second.keep_alive) Ref(-1);
    resolvers_.erase(found);
    // A terminating worker cannot run JS: the result is dropped, as the worker is.
    (void)resolver->Resolve(context, v8::String::NewFromUtf8Literal(isolate_, "cancelled"));
    if (poke) Poke();
  }

 private:
  struct Pending {
    v8::Global<v8::Promise::Resolver> resolver;
    bool keep_alive;
  };

  // The async handle holds the event loop open while any keep-alive wait is pending.
  void Ref(int delta) {
    refs_ += delta;
    if (refs_ == 1 && delta > 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
    if (refs_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  }

  // Wakes the waiter thread so it re-reads the pending list (it also watches the control word).
  void Poke() {
    control_.fetch_add(1);
    Futex(reinterpret_cast<uint32_t*>(&control_), FUTEX_WAKE, INT32_MAX, nullptr);
  }

  void Run() {
    std::vector<FutexWaitv> waitv;
    long woken = -1;  // what the last futex_waitv returned: the highest index it was woken on, or -1
    for (;;) {
      int64_t deadline = -1;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (woken > 0 && (stopping_ || !cancelled_.empty())) PassOn(waitv, static_cast<size_t>(woken));
        woken = -1;          // (a pass that completes a wait builds again, without sleeping)
        cancelled_.clear();  // a Cancel() from now on finds its word in the futex_waitv built here
        if (stopping_) return;
        // Read under the lock: a change to the lists after it comes with a Poke() that changes it.
        waitv.clear();
        waitv.push_back({control_.load(), reinterpret_cast<uint64_t>(&control_), FUTEX_32, 0});
        int64_t now = NowNs();
        Prune(now);
        armed_.clear();
        bool overflow = false;
        // Words with a wait first, then the idle sticky ones, as many as one call can watch.
        for (int pass = 0; pass < 2; pass++) {
          for (const Watch& watch : watches_) {
            if ((pass == 0) != Waited(watch.addr) || armed_.count(watch.addr)) continue;
            if (waitv.size() >= kMaxWaitv) {
              overflow = overflow || pass == 0;
              continue;
            }
            // Armed with the word's value now: any later wake on the address reaches this thread.
            waitv.push_back({__atomic_load_n(watch.addr, __ATOMIC_SEQ_CST), reinterpret_cast<uint64_t>(watch.addr), FUTEX_32, 0});
            armed_.insert(watch.addr);
          }
        }
        // Waits are judged by the values just armed: a change after this reading either fails
        // futex_waitv's own comparison or comes with a wake that reaches the thread. A wait that
        // completes now may leave a word nobody needs watched: build again before sleeping.
        if (Sweep(waitv, now)) continue;
        for (const PendingWait& wait : pending_) {
          if (wait.deadline >= 0 && (deadline < 0 || wait.deadline < deadline)) deadline = wait.deadline;
        }
        if (overflow) {
          int64_t recheck = now + kOverflowRecheckNs;
          if (deadline < 0 || recheck < deadline) deadline = recheck;
        }
        armed_deadline_ = deadline;
      }
      timespec absolute = ToTimespec(deadline);
      woken = syscall(SYS_futex_waitv, waitv.data(), waitv.size(), 0, deadline < 0 ? nullptr : &absolute, CLOCK_MONOTONIC);
    }
  }

  // Under mutex_, after a futex_waitv that a wake on a word ended (`woken`: the highest index woken;
  // the kernel reports no other). A word whose waits were all cancelled while the thread slept on
  // it (or that it leaves, stopping) may have taken a wake-one meant for a waiter elsewhere (a Lock's
  // release, a Semaphore's), which nobody here will act on: it is passed on, as futex-uring.cc does.
  // At worst a spurious wake, which every waiter tolerates. Sticky words are woken with wake-all.
  void PassOn(const std::vector<FutexWaitv>& waitv, size_t woken) {
    for (size_t i = 1; i <= woken && i < waitv.size(); i++) {
      uint32_t* addr = reinterpret_cast<uint32_t*>(waitv[i].uaddr);
      Watch* watch = Find(addr);  // still watched (only Prune() drops it), so still mapped
      if (watch == nullptr || watch->sticky) continue;
      if (!stopping_ && (Waited(addr) || !Cancelled(addr))) continue;
      Futex(addr, FUTEX_WAKE, 1, nullptr);
    }
  }

  bool Cancelled(uint32_t* addr) const {
    for (uint32_t* cancelled : cancelled_) if (cancelled == addr) return true;
    return false;
  }

  // Under mutex_.
  Watch* Find(uint32_t* addr) {
    for (Watch& watch : watches_) if (watch.addr == addr) return &watch;
    return nullptr;
  }

  bool Waited(uint32_t* addr) const {
    for (const PendingWait& wait : pending_) if (wait.addr == addr) return true;
    return false;
  }

  // Under mutex_: stops watching the words that no wait needs: every non-sticky one without a
  // pending wait, and the sticky ones idle for kStickyNs (which also releases their mappings).
  void Prune(int64_t now) {
    for (size_t i = 0; i < watches_.size();) {
      Watch& watch = watches_[i];
      bool keep = Waited(watch.addr) || (watch.sticky && now - watch.last_used < kStickyNs);
      if (keep) {
        i++;
        continue;
      }
      watches_[i] = std::move(watches_.back());
      watches_.pop_back();
    }
  }

  // Under mutex_: completes the waits whose word no longer holds their value (as armed in waitv,
  // or as it is now for a word that did not fit) or whose deadline passed; true if any did.
  bool Sweep(const std::vector<FutexWaitv>& waitv, int64_t now) {
    bool any = false;
    for (size_t i = 0; i < pending_.size();) {
      PendingWait& wait = pending_[i];
      const char* result = nullptr;
      if (ValueOf(waitv, wait.addr) != wait.expected) result = "ok";
      else if (wait.deadline >= 0 && now >= wait.deadline) result = "timed-out";
      if (result == nullptr) {
        i++;
        continue;
      }
      done_.push_back({wait.id, result});
      pending_[i] = std::move(pending_.back());
      pending_.pop_back();
      any = true;
    }
    if (any) uv_async_send(&async_);
    return any;
  }

  static uint32_t ValueOf(const std::vector<FutexWaitv>& waitv, uint32_t* addr) {
    for (size_t i = 1; i < waitv.size(); i++) {
      if (waitv[i].uaddr == reinterpret_cast<uint64_t>(addr)) return static_cast<uint32_t>(waitv[i].val);
    }
    return __atomic_load_n(addr, __ATOMIC_SEQ_CST);
  }

  static void OnAsync(uv_async_t* handle) {
    Waiter* self = static_cast<Waiter*>(handle->data);
    std::vector<Completion> done;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      done.swap(self->done_);
    }
    v8::Isolate* isolate = self->isolate_;
    v8::HandleScope scope(isolate);
    v8::Local<v8::Context> context = self->context_.Get(isolate);
    v8::Context::Scope context_scope(context);
    // A callback scope runs the microtasks that the resolutions queue, as any libuv callback into JS must.
    node::CallbackScope callback_scope(isolate, v8::Object::New(isolate), {0, 0});
    for (const Completion& completion : done) {
      auto found = self->resolvers_.find(completion.id);
      if (found == self->resolvers_.end()) continue;
      v8::Local<v8::Promise::Resolver> resolver = found->second.resolver.Get(isolate);
      if (found->second.keep_alive) self->Ref(-1);
      self->resolvers_.erase(found);
      // A worker being terminated cannot run JS: Resolve fails there, and must not abort the process.
      if (isolate->IsExecutionTerminating()) continue;
      (void)resolver->Resolve(context, v8::String::NewFromUtf8(isolate, completion.result).ToLocalChecked());
    }
  }

  static void Cleanup(void* data, void (*done)(void*), void* done_arg) {
    Waiter* self = static_cast<Waiter*>(data);
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->stopping_ = true;
    }
    self->Poke();
    if (self->thread_.joinable()) self->thread_.join();
    waiter = nullptr;
    self->resolvers_.clear();
    self->context_.Reset();
    self->cleanup_done_ = done;
    self->cleanup_done_arg_ = done_arg;
    uv_close(reinterpret_cast<uv_handle_t*>(&self->async_), [](uv_handle_t* handle) {
      Waiter* closed = static_cast<Waiter*>(handle->data);
      void (*finish)(void*) = closed->cleanup_done_;
      void* finish_arg = closed->cleanup_done_arg_;
      delete closed;
      finish(finish_arg);  // the environment may now go on (and unload this addon)
    });
  }

  v8::Isolate* isolate_;
  v8::Global<v8::Context> context_;
  uv_async_t async_;
  std::thread thread_;
  std::mutex mutex_;
  std::atomic<uint32_t> control_{0};
  bool stopping_ = false;
  uint64_t next_id_ = 0;
  std::vector<PendingWait> pending_;
  std::vector<uint32_t*> cancelled_;  // the non-sticky words of waits cancelled since the thread last armed
  std::vector<Watch> watches_;
  std::unordered_set<uint32_t*> armed_;  // the addresses in the thread's current futex_waitv
  int64_t armed_deadline_ = -1;          // and the deadline it sleeps until (-1: none)
  std::vector<Completion> done_;
  std::unordered_map<uint64_t, Pending> resolvers_;
  int refs_ = 0;
  node::AsyncCleanupHookHandle cleanup_hook_;
  void (*cleanup_done_)(void*) = nullptr;
  void* cleanup_done_arg_ = nullptr;
};

void FutexWaitAsync(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  std::shared_ptr<v8::BackingStore> store;
  uint32_t* addr = WordAddress(info, &store);
  if (addr == nullptr) return;
  uint32_t expected = static_cast<uint32_t>(info[2]->Int32Value(isolate->GetCurrentContext()).FromMaybe(0));
  int64_t timeout = TimeoutNs(info[3]);
  if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected) {
    v8::Local<v8::Promise::Resolver> resolver = v8::Promise::Resolver::New(isolate->GetCurrentContext()).ToLocalChecked();
    resolver->Resolve(isolate->GetCurrentContext(), v8::String::NewFromUtf8Literal(isolate, "not-equal")).Check();
    return info.GetReturnValue().Set(resolver->GetPromise());
  }
  bool keep_alive = info.Length() < 5 || info[4]->IsUndefined() || info[4]->BooleanValue(isolate);
  if (UringWaitAsync(info, addr, expected, timeout, store, keep_alive)) return;
  if (waiter == nullptr) waiter = new Waiter(isolate, isolate->GetCurrentContext());
  bool sticky = info.Length() >= 6 && info[5]->BooleanValue(isolate);
  info.GetReturnValue().Set(waiter->Add(addr, expected, timeout, std::move(store), keep_alive, sticky));
}

}  // namespace mp

namespace mp {

void FutexCancel(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (!info[0]->IsNumber()) return;
  uint64_t id = static_cast<uint64_t>(info[0].As<v8::Number>()->Value());
  if (!UringCancel(id) && waiter != nullptr) waiter->Cancel(id);
}

}  // namespace mp
