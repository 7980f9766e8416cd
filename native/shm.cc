// POSIX shared memory by name: shm_open + mmap(MAP_SHARED), handed to JS as a real
// SharedArrayBuffer whose backing store unmaps on release. N-API on Node 20 cannot make a
// SharedArrayBuffer over foreign memory, so this file uses V8's API directly.
#include "shm.h"
#include "errors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace mp {

// Runs on whatever thread V8 releases the store from (often a background thread): munmap only.
static void Unmap(void* data, size_t length, void*) {
  if (data != nullptr && length > 0) munmap(data, length);
}

void ShmOpen(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (info.Length() < 3 || !info[0]->IsString() || !info[1]->IsBoolean() || !info[2]->IsNumber()) {
    return ThrowTypeError(isolate, "shmOpen(name: string, create: boolean, size: number)");
  }
  v8::String::Utf8Value utf8(isolate, info[0]);
  std::string name = *utf8;
  bool create = info[1]->BooleanValue(isolate);
  double requested = info[2].As<v8::Number>()->Value();

  int flags = O_RDWR | (create ? O_CREAT | O_EXCL : 0);
  int fd = shm_open(name.c_str(), flags, 0600);
  if (fd < 0) return ThrowErrno(isolate, errno, "shm_open", name);

  size_t size;
  if (create) {
    if (ftruncate(fd, static_cast<off_t>(requested)) != 0) {
      int err = errno;
      close(fd);
      shm_unlink(name.c_str());
      return ThrowErrno(isolate, err, "ftruncate", name);
    }
    size = static_cast<size_t>(requested);
  } else {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(isolate, err, "fstat", name);
    }
    size = static_cast<size_t>(st.st_size);
  }

  void* data = nullptr;
  if (size > 0) {
    data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (data == MAP_FAILED) {
      int err = errno;
      close(fd);
      if (create) shm_unlink(name.c_str());
      return ThrowErrno(isolate, err, "mmap", name);
    }
  }
  close(fd);  // the mapping keeps the segment; the descriptor is not needed any more

  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(data, size, Unmap, nullptr);
  info.GetReturnValue().Set(v8::SharedArrayBuffer::New(isolate, std::move(store)));
}

void ShmUnlink(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (info.Length() < 1 || !info[0]->IsString()) return ThrowTypeError(isolate, "shmUnlink(name: string)");
  v8::String::Utf8Value utf8(isolate, info[0]);
  if (shm_unlink(*utf8) != 0) return ThrowErrno(isolate, errno, "shm_unlink", *utf8);
}

// Segment names and the authkey need a few unpredictable bytes. Web Crypto's first call loads 27
// of Node's modules, its streams among them (1.5-2 ms in a quiet process, 4 in a busy child);
// getrandom() is one syscall.
void RandomFill(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (info.Length() < 1 || !info[0]->IsUint8Array()) return ThrowTypeError(isolate, "randomFill(bytes: Uint8Array)");
  v8::Local<v8::Uint8Array> view = info[0].As<v8::Uint8Array>();
  char* data = static_cast<char*>(view->Buffer()->Data()) + view->ByteOffset();
  size_t length = view->ByteLength();
  while (length > 0) {
    ssize_t got = getrandom(data, length, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return ThrowErrno(isolate, errno, "getrandom", "random bytes");
    }
    data += got;
    length -= size_t(got);
  }
}

}  // namespace mp
