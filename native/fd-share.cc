// Socket Connections that cross processes (Python's resource_sharer): the sending process keeps a
// duplicate of the socket's fd under a random key, and a thread of its own hands it over to
// whoever asks with that key, through SCM_RIGHTS on a Unix socket in the abstract namespace (no
// file to clean up). The thread is native, so a sender whose JavaScript is busy still answers at
// once, and the receiver may ask synchronously. Only processes of the same user are answered.
#include "errors.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mp {

namespace {

constexpr size_t kKeyLength = 32;  // hex digits of 128 random bits
constexpr char kFound = 1, kNotFound = 0;

struct Sharer {
  std::mutex mutex;
  std::unordered_map<std::string, int> fds;  // key -> the duplicate this process keeps until it is taken
  std::string name;                           // the abstract address, without its leading NUL
  int listener = -1;
};

// One per process (the threads of a process share its fds), never destroyed: the sharer's thread
// may still be serving while exit() runs the destructors of statics.
Sharer& TheSharer() {
  static Sharer* sharer = new Sharer;
  return *sharer;
}

socklen_t AbstractAddress(const std::string& name, sockaddr_un* address) {
  *address = sockaddr_un{};
  address->sun_family = AF_UNIX;
  size_t length = std::min(name.size(), sizeof address->sun_path - 1);
  memcpy(address->sun_path + 1, name.data(), length);  // sun_path[0] == 0: the abstract namespace
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
}

bool WriteAll(int fd, const char* buffer, size_t length) {
  for (size_t at = 0; at < length;) {
    ssize_t put = write(fd, buffer + at, length - at);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      if (put == 0) errno = EPIPE;
      return false;
    }
    at += static_cast<size_t>(put);
  }
  return true;
}

bool ReadAll(int fd, char* buffer, size_t length) {
  for (size_t at = 0; at < length;) {
    ssize_t got = read(fd, buffer + at, length - at);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    at += static_cast<size_t>(got);
  }
  return true;
}

// Sends one status byte, with `fd` attached when it is >= 0.
bool SendStatus(int socket, char status, int fd) {
  iovec part{&status, 1};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
  }
  ssize_t sent;
  do sent = sendmsg(socket, &message, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return sent == 1;
}

void Serve(int client) {
  // A client that connects and says nothing must not hold the others up for long.
  timeval patience{2, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  ucred peer{};
  socklen_t length = sizeof peer;
  char key[kKeyLength];
  if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || peer.uid != getuid() || !ReadAll(client, key, kKeyLength)) return;
  Sharer& sharer = TheSharer();
  int fd = -1;
  {
    std::lock_guard<std::mutex> lock(sharer.mutex);
    auto found = sharer.fds.find(std::string(key, kKeyLength));
    if (found != sharer.fds.end()) {
      fd = found->second;
      sharer.fds.erase(found);
    }
  }
  SendStatus(client, fd >= 0 ? kFound : kNotFound, fd);
  // The message in flight holds its own reference to the socket: ours can go now.
  if (fd >= 0) close(fd);
}

void* ServeForever(void*) {
  Sharer& sharer = TheSharer();
  int listener = sharer.listener;
  for (;;) {
    int client = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client >= 0) {
      Serve(client);
      close(client);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      // Out of fds or memory: the connection stays pending; try again a little later, not at once.
      poll(nullptr, 0, 50);
      continue;
    }
    // Anything else ends this sharer: the next shareFd() starts another (at a new address).
    std::lock_guard<std::mutex> lock(sharer.mutex);
    close(listener);
    sharer.listener = -1;
    return nullptr;
  }
}

// Starts the thread on first use; false (errno set) if it could not.
bool StartSharer(const char** syscall) {
  Sharer& sharer = TheSharer();
  if (sharer.listener >= 0) return true;
  unsigned char random[8];
  int urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (urandom < 0 || read(urandom, random, sizeof random) != sizeof random) {
    if (urandom >= 0) close(urandom);
    *syscall = "read(/dev/urandom)";
    return false;
  }
  close(urandom);
  char name[64];
  snprintf(name, sizeof name, "multiproc-fds-%d-%02x%02x%02x%02x%02x%02x%02x%02x", getpid(), random[0], random[1], random[2], random[3], random[4], random[5], random[6], random[7]);
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address;
  socklen_t length = AbstractAddress(name, &address);
  *syscall = listener < 0 ? "socket" : bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ? "bind" : listen(listener, 64) != 0 ? "listen" : nullptr;
  if (*syscall != nullptr) {
    int err = errno;
    if (listener >= 0) close(listener);
    errno = err;
    return false;
  }
  sharer.listener = listener;
  sharer.name = name;
  pthread_t thread;
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attributes, 64 * 1024);
  // The thread takes no signals: they stay the process's JavaScript's to handle.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &before);
  int err = pthread_create(&thread, &attributes, ServeForever, nullptr);
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  pthread_attr_destroy(&attributes);
  if (err != 0) {
    close(listener);
    sharer.listener = -1;
    errno = err;
    *syscall = "pthread_create";
    return false;
  }
  return true;
}

std::string StringArgument(v8::Isolate* isolate, v8::Local<v8::Value> value) {
  return std::string(*v8::String::Utf8Value(isolate, value));
}

}  // namespace

// shareFd(fd, key) -> the sharer's address: keeps a duplicate of `fd` until a process asks for
// `key` (32 hex digits the caller drew) with takeFd().
void ShareFd(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (!info[0]->IsInt32() || !info[1]->IsString()) return ThrowTypeError(isolate, "shareFd(fd: number, key: string)");
  std::string key = StringArgument(isolate, info[1]);
  if (key.size() != kKeyLength) return ThrowTypeError(isolate, "shareFd(): the key must be 32 characters");
  int fd = info[0].As<v8::Int32>()->Value();
  Sharer& sharer = TheSharer();
  std::lock_guard<std::mutex> lock(sharer.mutex);
  const char* syscall = "";
  if (!StartSharer(&syscall)) return ThrowErrno(isolate, errno, syscall, "the fd sharer");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ThrowErrno(isolate, errno, "fcntl", "F_DUPFD_CLOEXEC " + std::to_string(fd));
  sharer.fds[key] = copy;
  info.GetReturnValue().Set(v8::String::NewFromUtf8(isolate, sharer.name.c_str()).ToLocalChecked());
}

// unshareFd(key) -> whether a duplicate was kept under `key`: it is closed (a send that failed).
void UnshareFd(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (!info[0]->IsString()) return ThrowTypeError(isolate, "unshareFd(key: string)");
  std::string key = StringArgument(isolate, info[0]);
  Sharer& sharer = TheSharer();
  int fd = -1;
  {
    std::lock_guard<std::mutex> lock(sharer.mutex);
    auto found = sharer.fds.find(key);
    if (found != sharer.fds.end()) {
      fd = found->second;
      sharer.fds.erase(found);
    }
  }
  if (fd >= 0) close(fd);
  info.GetReturnValue().Set(fd >= 0);
}

// takeFd(address, key, pid) -> the fd, now this process's; -1 when the sharer has none under
// `key` (taken already). Throws ECONNREFUSED when the sharing process has exited, and EPERM when
// what answers at the address is not process `pid` of this user (the name of an exited sharer can
// be bound again by anyone).
void TakeFd(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (!info[0]->IsString() || !info[1]->IsString() || !info[2]->IsInt32()) return ThrowTypeError(isolate, "takeFd(address: string, key: string, pid: number)");
  pid_t pid = info[2].As<v8::Int32>()->Value();
  std::string name = StringArgument(isolate, info[0]);
  std::string key = StringArgument(isolate, info[1]);
  if (key.size() != kKeyLength) return ThrowTypeError(isolate, "takeFd(): the key must be 32 characters");
  int socket_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (socket_ < 0) return ThrowErrno(isolate, errno, "socket", name);
  sockaddr_un address;
  socklen_t length = AbstractAddress(name, &address);
  timeval patience{10, 0};
  setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  setsockopt(socket_, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
  int result;
  do result = connect(socket_, reinterpret_cast<sockaddr*>(&address), length);
  while (result != 0 && errno == EINTR);
  if (result != 0) {
    int err = errno;
    close(socket_);
    return ThrowErrno(isolate, err, "connect", name);
  }
  ucred peer{};
  socklen_t peerLength = sizeof peer;
  if (getsockopt(socket_, SOL_SOCKET, SO_PEERCRED, &peer, &peerLength) != 0 || peer.uid != getuid() || peer.pid != pid) {
    close(socket_);
    return ThrowErrno(isolate, EPERM, "connect", name + " (not the sending process)");
  }
  if (!WriteAll(socket_, key.data(), kKeyLength)) {
    int err = errno;
    close(socket_);
    return ThrowErrno(isolate, err, "write", name);
  }
  char status = kNotFound;
  iovec part{&status, 1};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t got;
  do got = recvmsg(socket_, &message, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  int err = errno;
  close(socket_);
  if (got != 1) return ThrowErrno(isolate, got < 0 ? err : ECONNRESET, "recvmsg", name);
  // The kernel drops a passed fd that this process has no room for (its fd limit).
  if (message.msg_flags & MSG_CTRUNC) return ThrowErrno(isolate, EMFILE, "recvmsg", name + " (the fd did not fit)");
  int fd = -1;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (status == kFound && header != nullptr && header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
    memcpy(&fd, CMSG_DATA(header), sizeof(int));
  }
  info.GetReturnValue().Set(v8::Integer::New(isolate, fd));
}

}  // namespace mp
