// Memory for large messages, reused. A fresh 1 MiB allocation costs more in page faults (the
// kernel maps and zeroes 256 pages on first touch: 130-380 us here) than copying the message into
// it (45 us). A Buffer made here is backed by a block that, once V8 has freed the Buffer, goes to a
// free list for the next message instead of back to the kernel. Blocks come in power-of-two sizes
// from 64 KiB to 16 MiB (larger ones are not kept); the lists hold at most 128 MiB per process, all
// threads together (V8 may free a store on any thread, hence the mutex), and trimRecycled() empties
// them. The Buffer shows exactly the bytes asked for, never a block's stale tail.
// Fresh memory comes in 2 MiB-aligned regions, cut into blocks of the class asked for. A region of
// blocks of 1 MiB or more is advised as a transparent huge page, which the kernel maps with one
// fault where 4 KiB pages take 512: until V8 has freed enough Buffers (it collects about every 64
// MiB of them), most large messages get fresh memory, and a fresh 1 MiB took 230-250 us with
// MAP_POPULATE of 4 KiB pages, 75-80 us as half of a huge page; a 1 MiB Pipe round trip 316-505 us
// against 325-1,142 on 4 KiB pages. Smaller blocks (a pool's chunks of numbers) stay on 4 KiB
// pages: where memory is fragmented, a fresh huge page waits for the kernel to compact memory
// (THP "defrag" is "madvise" on most systems), and allocRecycled() took 160 ms of a 230 ms map()
// of a million numbers in 128 KiB chunks, after ten pools had started and stopped; on 4 KiB pages
// that map() took 122-149 ms.
#include "recycle.h"
#include "errors.h"

#include <sys/mman.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>

#include <mutex>
#include <utility>
#include <vector>

namespace mp {

static const int kMinLog2 = 16;
static const int kMaxKeptLog2 = 24;
static const int kRegionLog2 = 21;  // a transparent huge page on x86-64 and arm64 with 4 KiB pages
static const int kHugeFromLog2 = 20;  // blocks of 1 MiB and more come from huge pages (see above)
// V8 collects about every 64 MiB of external memory, and a round trip's messages and waiting parts
// go through the lists on both sides of it: with 64 MiB, 1 MiB round trips took 1.65-1.96 ms, with
// 128 MiB 0.88-1.5 ms (alternating runs).
static const size_t kMaxKeptBytes = size_t(1) << 27;

static std::mutex mutex;
static std::vector<void*> freeBlocks[kMaxKeptLog2 + 1];  // by log2 of the block size
static size_t keptBytes = 0;
static double mapped = 0, reused = 0;  // fresh regions and reused blocks, for recycledStats()

static int SizeClass(size_t length) {
  int log2 = kMinLog2;
  while ((size_t(1) << log2) < length) log2++;
  return log2;
}

// V8's deleter for the stores made here, called on whatever thread frees one; the block's size
// class travels in deleter_data.
static void Release(void* data, size_t, void* deleter_data) {
  int log2 = static_cast<int>(reinterpret_cast<intptr_t>(deleter_data));
  size_t block = size_t(1) << log2;
  if (log2 <= kMaxKeptLog2) {
    std::lock_guard<std::mutex> lock(mutex);
    if (keptBytes + block <= kMaxKeptBytes) {
      freeBlocks[log2].push_back(data);
      keptBytes += block;
      return;
    }
  }
  munmap(data, block);
}

// Maps every page now: the message fills the block anyway, and mapping them in one call costs less
// than a fault per page.
static void Populate(char* data, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  // Any failure but "unknown advice" (no memory for it now, say) leaves the pages to fault in as
  // the message is copied, as MAP_POPULATE would have.
  if (madvise(data, bytes, MADV_POPULATE_WRITE) == 0 || errno != EINVAL) return;
#endif
  // Kernels before 5.14: a write per page faults each in (a huge page at its first).
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  volatile char* bytesToTouch = data;
  for (size_t at = 0; at < bytes; at += page) bytesToTouch[at] = 0;
}

// `bytes` (a multiple of 2 MiB) of fresh memory, 2 MiB-aligned, populated, advised as huge pages if `huge`.
static char* MapFresh(size_t bytes, bool huge) {
  const size_t align = size_t(1) << kRegionLog2;
  const size_t span = bytes + align;
  void* mapping = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return nullptr;
  char* raw = static_cast<char*>(mapping);
  char* start = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + align - 1) & ~uintptr_t(align - 1));
  if (start > raw) munmap(raw, start - raw);
  if (raw + span > start + bytes) munmap(start + bytes, raw + span - (start + bytes));
#ifdef MADV_HUGEPAGE
  if (huge) madvise(start, bytes, MADV_HUGEPAGE);  // where THP is "madvise"; where it is "never", 4 KiB pages
#endif
  Populate(start, bytes);
  return start;
}

static void* Acquire(int log2) {
  const size_t block = size_t(1) << log2;
  if (log2 <= kMaxKeptLog2) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<void*>& list = freeBlocks[log2];
    if (!list.empty()) {
      void* data = list.back();
      list.pop_back();
      keptBytes -= block;
      reused++;
      return data;
    }
  }
  const size_t region = block > (size_t(1) << kRegionLog2) ? block : size_t(1) << kRegionLog2;
  char* data = MapFresh(region, log2 >= kHugeFromLog2);
  if (data == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  mapped++;
  // A smaller block is the region's first; the others wait in the list for the next messages.
  for (size_t at = block; at < region; at += block) {
    freeBlocks[log2].push_back(data + at);
    keptBytes += block;
  }
  return data;
}

// allocRecycled(length): an uninitialized ArrayBuffer of `length` bytes, 64 KiB to 1 TiB.
void AllocRecycled(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  double requested = info.Length() > 0 && info[0]->IsNumber() ? info[0].As<v8::Number>()->Value() : 0;
  if (!(requested >= double(size_t(1) << kMinLog2) && requested <= double(size_t(1) << 40))) {
    return ThrowTypeError(isolate, "allocRecycled(length: number): length must be 64 KiB to 1 TiB");
  }
  size_t length = static_cast<size_t>(requested);
  int log2 = SizeClass(length);
  void* data = Acquire(log2);
  if (data == nullptr) return ThrowErrno(isolate, errno, "mmap", "a message buffer");
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(data, length, Release, reinterpret_cast<void*>(static_cast<intptr_t>(log2)));
  info.GetReturnValue().Set(v8::ArrayBuffer::New(isolate, std::move(store)));
}

// trimRecycled(): gives every kept block back to the kernel.
void TrimRecycled(const v8::FunctionCallbackInfo<v8::Value>&) {
  std::vector<std::pair<void*, size_t>> blocks;
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (int log2 = kMinLog2; log2 <= kMaxKeptLog2; log2++) {
      for (void* data : freeBlocks[log2]) blocks.emplace_back(data, size_t(1) << log2);
      freeBlocks[log2].clear();
    }
    keptBytes = 0;
  }
  for (auto& [data, size] : blocks) munmap(data, size);
}

// recycledStats(): [regions mapped, blocks reused, bytes kept], in this process.
void RecycledStats(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  std::lock_guard<std::mutex> lock(mutex);
  v8::Local<v8::Value> values[] = {v8::Number::New(isolate, mapped), v8::Number::New(isolate, reused), v8::Number::New(isolate, double(keptBytes))};
  info.GetReturnValue().Set(v8::Array::New(isolate, values, 3));
}

}  // namespace mp
