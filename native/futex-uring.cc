// Asynchronous futex waits through io_uring (IORING_OP_FUTEX_WAIT, Linux 6.7+).
//
// The waiter thread of futex.cc costs a wake of that thread and then one of the event loop (a
// uv_async) for every wait that ends: two threads to schedule where one would do. On a busy
// machine, with more running threads than CPUs, each of them is a context switch (a Pipe round
// trip under `taskset -c 0` took 66-69 us against CPython's 34-51). Here the kernel itself
// completes the wait: the waker's FUTEX_WAKE posts a completion on this thread's io_uring, whose
// fd the event loop polls, so the woken JS thread is the only one that runs.
//
// One ring per JS thread (the main thread and each worker), made at its first asynchronous wait.
// Where io_uring or its futex operations are missing (older kernels, seccomp profiles that forbid
// io_uring, kernel.io_uring_disabled) or MULTIPROC_FUTEX_WAITER=thread is set, that thread uses
// the waiter thread, with the same results.
#include "futex-uring.h"
#include "futex.h"
#include "errors.h"

#include <node.h>
#include <uv.h>
#include <linux/futex.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unordered_map>

#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51  // Linux 6.7; older headers stop before it
#endif

namespace mp {

static const uint32_t kFutex2SizeU32 = 0x02;  // FUTEX2_SIZE_U32, and not FUTEX2_PRIVATE: shared words
static const uint64_t kMatchAny = 0xffffffffu;  // FUTEX_BITSET_MATCH_ANY
// The user_data of a wait is its id; its linked timeout and its cancel request are tagged.
static const uint64_t kTimeoutTag = 1ull << 63;
static const uint64_t kCancelTag = 1ull << 62;
static const unsigned kSqEntries = 16;
// Completions wait here for the event loop: one per wait that ended, plus their timeouts. More
// are kept by the kernel (IORING_FEAT_NODROP) until there is room.
static const unsigned kCqEntries = 1024;

// The smallest io_uring: requests are submitted as soon as they are queued, so the submission
// queue never holds more than a wait and its timeout; completions are read by the event loop.
class Ring {
 public:
  // Null when this kernel or process cannot wait on a futex through io_uring.
  static Ring* Open() {
    io_uring_params params;
    std::memset(&params, 0, sizeof params);
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = kCqEntries;
    int fd = static_cast<int>(syscall(__NR_io_uring_setup, kSqEntries, &params));
    if (fd < 0) return nullptr;
    Ring* ring = new Ring(fd);
    if (!ring->Map(params) || !ring->CanWaitOnFutex()) {
      delete ring;
      return nullptr;
    }
    return ring;
  }

  ~Ring() {
    if (rings_ != MAP_FAILED) munmap(rings_, rings_size_);
    if (sqes_ != MAP_FAILED) munmap(sqes_, sqes_size_);
    close(fd_);  // the kernel cancels what is still pending
  }

  int fd() const { return fd_; }

  // Queues a request; false when the submission queue is full (it is submitted at once, so never).
  bool Push(const io_uring_sqe& sqe) {
    unsigned tail = *sq_tail_;
    if (tail - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) >= sq_entries_) return false;
    unsigned index = tail & sq_mask_;
    sqes_[index] = sqe;
    sq_array_[index] = index;
    __atomic_store_n(sq_tail_, tail + 1, __ATOMIC_RELEASE);
    queued_++;
    return true;
  }

  // Hands the queued requests to the kernel; 0 or -errno.
  int Submit(unsigned wait_for = 0) {
    while (queued_ > 0 || wait_for > 0) {
      long done = syscall(__NR_io_uring_enter, fd_, queued_, wait_for, wait_for > 0 ? IORING_ENTER_GETEVENTS : 0, nullptr, 0);
      if (done < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      queued_ -= static_cast<unsigned>(done);
      wait_for = 0;
    }
    return 0;
  }

  // Calls f(user_data, res) for every completion, in order.
  template <typename F>
  void Drain(F f) {
    for (;;) {
      unsigned head = *cq_head_;
      unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
      for (; head != tail; head++) {
        const io_uring_cqe& cqe = cqes_[head & cq_mask_];
        uint64_t data = cqe.user_data;
        int32_t res = cqe.res;
        __atomic_store_n(cq_head_, head + 1, __ATOMIC_RELEASE);
        f(data, res);
      }
      // Completions the ring had no room for wait in the kernel: fetch them.
      if (!(__atomic_load_n(sq_flags_, __ATOMIC_ACQUIRE) & IORING_SQ_CQ_OVERFLOW)) return;
      syscall(__NR_io_uring_enter, fd_, 0, 0, IORING_ENTER_GETEVENTS, nullptr, 0);
    }
  }

 private:
  explicit Ring(int fd) : fd_(fd) {}

  bool Map(const io_uring_params& params) {
    // One mapping for both queues (IORING_FEAT_SINGLE_MMAP, 5.4), and completions never dropped
    // (IORING_FEAT_NODROP, 5.5): every kernel with futex operations has both.
    if (!(params.features & IORING_FEAT_SINGLE_MMAP) || !(params.features & IORING_FEAT_NODROP)) return false;
    size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
    rings_size_ = sq_size > cq_size ? sq_size : cq_size;
    rings_ = mmap(nullptr, rings_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING);
    if (rings_ == MAP_FAILED) return false;
    sqes_size_ = params.sq_entries * sizeof(io_uring_sqe);
    void* sqes = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) return false;
    sqes_ = static_cast<io_uring_sqe*>(sqes);
    char* base = static_cast<char*>(rings_);
    sq_head_ = reinterpret_cast<unsigned*>(base + params.sq_off.head);
    sq_tail_ = reinterpret_cast<unsigned*>(base + params.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(base + params.sq_off.ring_mask);
    sq_entries_ = params.sq_entries;
    sq_flags_ = reinterpret_cast<unsigned*>(base + params.sq_off.flags);
    sq_array_ = reinterpret_cast<unsigned*>(base + params.sq_off.array);
    cq_head_ = reinterpret_cast<unsigned*>(base + params.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(base + params.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(base + params.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(base + params.cq_off.cqes);
    return true;
  }

  // A wait whose word does not hold the value ends at once with EAGAIN where the operation
  // exists; kernels without it answer EINVAL.
  bool CanWaitOnFutex() {
    uint32_t word = 1;
    io_uring_sqe sqe;
    std::memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_FUTEX_WAIT;
    sqe.fd = kFutex2SizeU32;
    sqe.addr = reinterpret_cast<uint64_t>(&word);
    sqe.off = 0;
    sqe.addr3 = kMatchAny;
    sqe.user_data = 1;
    if (!Push(sqe) || Submit(1) != 0) return false;
    int32_t result = 0;
    Drain([&](uint64_t, int32_t res) { result = res; });
    return result == -EAGAIN;
  }

  int fd_;
  void* rings_ = MAP_FAILED;
  size_t rings_size_ = 0;
  io_uring_sqe* sqes_ = static_cast<io_uring_sqe*>(MAP_FAILED);
  size_t sqes_size_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_entries_ = 0;
  unsigned* sq_flags_ = nullptr;
  unsigned* sq_array_ = nullptr;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
  unsigned queued_ = 0;
};

class UringWaiter;
enum class Kind { kUndecided, kUring, kThread };
static thread_local Kind kind = Kind::kUndecided;
static thread_local UringWaiter* uring_waiter = nullptr;

class UringWaiter {
 public:
  UringWaiter(v8::Isolate* isolate, Ring* ring) : isolate_(isolate), context_(isolate, isolate->GetCurrentContext()), ring_(ring) {
    uv_poll_init(node::GetCurrentEventLoop(isolate), &poll_, ring->fd());
    poll_.data = this;
    uv_poll_start(&poll_, UV_READABLE, OnReadable);
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
    // The asynchronous kind of cleanup hook, as futex.cc's: the environment waits for the close.
    cleanup_hook_ = node::AddEnvironmentCleanupHook(isolate, Cleanup, this);
  }

  v8::Local<v8::Promise> Add(uint32_t* addr, uint32_t expected, int64_t timeout, std::shared_ptr<v8::BackingStore> store, bool keep_alive) {
    v8::Local<v8::Context> context = context_.Get(isolate_);
    v8::Local<v8::Promise::Resolver> resolver = v8::Promise::Resolver::New(context).ToLocalChecked();
    v8::Local<v8::Promise> promise = resolver->GetPromise();
    if (timeout == 0) {
      resolver->Resolve(context, v8::String::NewFromUtf8Literal(isolate_, "timed-out")).Check();
      return promise;
    }
    uint64_t id = ++next_id_;
    Wait& wait = waits_[id];
    wait.addr = addr;
    wait.expected = expected;
    wait.deadline = timeout < 0 ? -1 : NowNs() + timeout;
    wait.store = std::move(store);
    wait.resolver.Reset(isolate_, resolver);
    wait.keep_alive = keep_alive;
    int error = Arm(id, wait);
    if (error != 0) {
      waits_.erase(id);
      ThrowErrno(isolate_, -error, "io_uring_enter", "IORING_OP_FUTEX_WAIT");
      return promise;
    }
    if (keep_alive) Ref(+1);
    promise->Set(context, v8::String::NewFromUtf8Literal(isolate_, "id"), v8::Number::New(isolate_, static_cast<double>(id))).Check();
    return promise;
  }

  // Settles the wait now with 'cancelled'; the kernel's request is cancelled behind it, and the
  // word's mapping is kept until the kernel says it is done.
  void Cancel(uint64_t id) {
    auto found = waits_.find(id);
    if (found == waits_.end() || found->second.settled) return;
    Wait& wait = found->second;
    Settle(wait, "cancelled");
    io_uring_sqe sqe = Blank();
    sqe.opcode = IORING_OP_ASYNC_CANCEL;
    sqe.addr = id;
    sqe.user_data = id | kCancelTag;
    if (ring_->Push(sqe)) ring_->Submit();
  }

 private:
  struct Wait {
    uint32_t* addr = nullptr;
    uint32_t expected = 0;
    int64_t deadline = -1;  // CLOCK_MONOTONIC ns, or -1
    std::shared_ptr<v8::BackingStore> store;
    v8::Global<v8::Promise::Resolver> resolver;
    bool keep_alive = false;
    bool settled = false;  // resolved already (cancelled); the kernel's request may still be out
  };

  static io_uring_sqe Blank() {
    io_uring_sqe sqe;
    std::memset(&sqe, 0, sizeof sqe);
    return sqe;
  }

  // Submits the kernel's wait for `wait`, with a linked timeout for its deadline; 0 or -errno.
  int Arm(uint64_t id, const Wait& wait) {
    io_uring_sqe sqe = Blank();
    sqe.opcode = IORING_OP_FUTEX_WAIT;
    sqe.fd = kFutex2SizeU32;
    sqe.addr = reinterpret_cast<uint64_t>(wait.addr);
    sqe.off = wait.expected;
    sqe.addr3 = kMatchAny;
    sqe.user_data = id;
    __kernel_timespec left;  // read by the kernel when it takes the request, below
    if (wait.deadline >= 0) {
      int64_t ns = wait.deadline - NowNs();
      if (ns < 1) ns = 1;
      left.tv_sec = ns / 1000000000;
      left.tv_nsec = ns % 1000000000;
      sqe.flags = IOSQE_IO_LINK;
    }
    if (!ring_->Push(sqe)) return -EBUSY;
    if (wait.deadline >= 0) {
      io_uring_sqe timeout = Blank();
      timeout.opcode = IORING_OP_LINK_TIMEOUT;
      timeout.addr = reinterpret_cast<uint64_t>(&left);
      timeout.len = 1;
      timeout.user_data = id | kTimeoutTag;
      if (!ring_->Push(timeout)) return -EBUSY;
    }
    return ring_->Submit();
  }

  void Settle(Wait& wait, const char* result) {
    if (wait.keep_alive) Ref(-1);
    wait.settled = true;
    v8::Local<v8::Promise::Resolver> resolver = wait.resolver.Get(isolate_);
    wait.resolver.Reset();
    // A worker being terminated cannot run JS: Resolve fails there, and must not abort the process.
    if (isolate_->IsExecutionTerminating()) return;
    (void)resolver->Resolve(context_.Get(isolate_), v8::String::NewFromUtf8(isolate_, result).ToLocalChecked());
  }

  // The kernel finished the request of wait `id` with `res`.
  void Complete(uint64_t id, int32_t res) {
    auto found = waits_.find(id);
    if (found == waits_.end()) return;
    Wait& wait = found->second;
    if (!wait.settled) {
      const char* result = "ok";
      if (res == -ECANCELED) {
        result = "timed-out";  // only its linked timeout cancels a wait that is not settled
      } else if (res == 0 || res == -EINTR) {
        // Woken, or interrupted, with the word still as it was (a wake for another reason, or a
        // change undone meanwhile): wait again, as the waiter thread would sleep on.
        if (__atomic_load_n(wait.addr, __ATOMIC_SEQ_CST) == wait.expected) {
          if (wait.deadline >= 0 && NowNs() >= wait.deadline) result = "timed-out";
          else if (Arm(id, wait) == 0) return;
        }
      }  // -EAGAIN: the word changed before the kernel slept on it
      Settle(wait, result);
    } else if (res == 0) {
      // Woken after it was cancelled: the wake may have been a wake-one meant for whoever waits
      // (a Lock's release, a Semaphore's), so it is passed on rather than lost.
      syscall(SYS_futex, wait.addr, FUTEX_WAKE, 1, nullptr, nullptr, 0);
    }
    waits_.erase(found);
  }

  void Ref(int delta) {
    refs_ += delta;
    if (refs_ == 1 && delta > 0) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_));
    if (refs_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    UringWaiter* self = static_cast<UringWaiter*>(handle->data);
    v8::Isolate* isolate = self->isolate_;
    v8::HandleScope scope(isolate);
    v8::Local<v8::Context> context = self->context_.Get(isolate);
    v8::Context::Scope context_scope(context);
    // Runs the microtasks that the resolutions queue, as any libuv callback into JS must.
    node::CallbackScope callback_scope(isolate, v8::Object::New(isolate), {0, 0});
    self->ring_->Drain([self](uint64_t data, int32_t res) {
      if (data & (kTimeoutTag | kCancelTag)) return;
      self->Complete(data, res);
    });
  }

  static void Cleanup(void* data, void (*done)(void*), void* done_arg) {
    UringWaiter* self = static_cast<UringWaiter*>(data);
    uring_waiter = nullptr;
    self->waits_.clear();
    self->context_.Reset();
    self->cleanup_done_ = done;
    self->cleanup_done_arg_ = done_arg;
    uv_poll_stop(&self->poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->poll_), [](uv_handle_t* handle) {
      UringWaiter* closed = static_cast<UringWaiter*>(handle->data);
      void (*finish)(void*) = closed->cleanup_done_;
      void* finish_arg = closed->cleanup_done_arg_;
      delete closed->ring_;  // after the poll handle: its fd must outlive it
      delete closed;
      finish(finish_arg);
    });
  }

  v8::Isolate* isolate_;
  v8::Global<v8::Context> context_;
  Ring* ring_;
  uv_poll_t poll_;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, Wait> waits_;
  int refs_ = 0;
  node::AsyncCleanupHookHandle cleanup_hook_;
  void (*cleanup_done_)(void*) = nullptr;
  void* cleanup_done_arg_ = nullptr;
};

// Decides once per thread, at its first asynchronous wait.
static UringWaiter* WaiterFor(v8::Isolate* isolate) {
  if (kind == Kind::kUndecided) {
    const char* forced = std::getenv("MULTIPROC_FUTEX_WAITER");
    Ring* ring = forced != nullptr && std::strcmp(forced, "thread") == 0 ? nullptr : Ring::Open();
    kind = ring != nullptr ? Kind::kUring : Kind::kThread;
    if (ring != nullptr) uring_waiter = new UringWaiter(isolate, ring);
  }
  return kind == Kind::kUring ? uring_waiter : nullptr;
}

bool UringWaitAsync(const v8::FunctionCallbackInfo<v8::Value>& info, uint32_t* addr, uint32_t expected, int64_t timeout_ns, std::shared_ptr<v8::BackingStore> store, bool keep_alive) {
  UringWaiter* waiter = WaiterFor(info.GetIsolate());
  if (waiter == nullptr) return false;
  info.GetReturnValue().Set(waiter->Add(addr, expected, timeout_ns, std::move(store), keep_alive));
  return true;
}

bool UringCancel(uint64_t id) {
  if (kind != Kind::kUring) return false;
  if (uring_waiter != nullptr) uring_waiter->Cancel(id);
  return true;
}

void FutexWaiter(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  const char* name = WaiterFor(isolate) != nullptr ? "io_uring" : "thread";
  info.GetReturnValue().Set(v8::String::NewFromUtf8(isolate, name).ToLocalChecked());
}

}  // namespace mp
