// A listening socket made synchronously, for Listener: Python's Listener is bound when its
// constructor returns (the real port of port 0 known, an address in use an error there), where
// Node's server.listen() binds on a later turn of the event loop. Node then takes the socket over
// with server.listen({ fd }).
#include "errors.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace mp {

namespace {

v8::Local<v8::String> Text(v8::Isolate* isolate, const char* text) {
  return v8::String::NewFromUtf8(isolate, text).ToLocalChecked();
}

// getaddrinfo() failures as Node names them (dns.lookup's ENOTFOUND for a name that does not resolve).
void ThrowLookup(v8::Isolate* isolate, int status, const std::string& host) {
  const char* code = status == EAI_NONAME || status == EAI_NODATA ? "ENOTFOUND" : status == EAI_AGAIN ? "EAI_AGAIN" : "EAI_FAIL";
  std::string message = "getaddrinfo(" + host + ") failed: " + gai_strerror(status) + " (" + code + ")";
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Object> error = v8::Exception::Error(Text(isolate, message.c_str())).As<v8::Object>();
  error->Set(context, Text(isolate, "code"), Text(isolate, code)).Check();
  error->Set(context, Text(isolate, "syscall"), Text(isolate, "getaddrinfo")).Check();
  isolate->ThrowException(error);
}

// Binds and listens; returns the fd, or -1 with errno and the failing call in `syscall`.
int BindAndListen(const sockaddr* address, socklen_t length, int backlog, const char** syscall) {
  int fd = socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *syscall = "socket";
    return -1;
  }
  // As libuv binds a TCP server: the address reusable at once after a restart, and IPv6 sockets
  // dual-stack (they take IPv4 clients too on '::').
  int on = 1, off = 0;
  if (address->sa_family != AF_UNIX) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (address->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  if (bind(fd, address, length) != 0) {
    *syscall = "bind";
  } else if (listen(fd, backlog) != 0) {
    *syscall = "listen";
  } else {
    return fd;
  }
  int err = errno;
  close(fd);
  errno = err;
  return -1;
}

}  // namespace

// listenSocket(path, backlog) or listenSocket(host, port, backlog) -> [fd, boundHost, boundPort]
// (a Unix socket: [fd]). Throws Node-like errors: .code EADDRINUSE, EACCES, ENOTFOUND...
void ListenSocket(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  bool unix = info.Length() == 2;
  if (!info[0]->IsString() || (unix ? !info[1]->IsInt32() : !info[1]->IsInt32() || !info[2]->IsInt32())) {
    return ThrowTypeError(isolate, "listenSocket(path: string, backlog: number) or listenSocket(host: string, port: number, backlog: number)");
  }
  std::string text(*v8::String::Utf8Value(isolate, info[0]));
  int backlog = info[unix ? 1 : 2].As<v8::Int32>()->Value();
  const char* syscall = "";
  v8::Local<v8::Array> result = v8::Array::New(isolate);

  if (unix) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (text.size() >= sizeof address.sun_path) return ThrowErrno(isolate, ENAMETOOLONG, "bind", text);
    memcpy(address.sun_path, text.c_str(), text.size() + 1);
    int fd = BindAndListen(reinterpret_cast<sockaddr*>(&address), sizeof address, backlog, &syscall);
    if (fd < 0) return ThrowErrno(isolate, errno, syscall, text);
    result->Set(context, 0, v8::Integer::New(isolate, fd)).Check();
    return info.GetReturnValue().Set(result);
  }

  int port = info[1].As<v8::Int32>()->Value();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  int status = getaddrinfo(text.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (status != 0) return ThrowLookup(isolate, status, text);
  // The first address, as Node's listen() takes dns.lookup()'s first answer.
  int fd = BindAndListen(found->ai_addr, found->ai_addrlen, backlog, &syscall);
  int err = errno;
  freeaddrinfo(found);
  if (fd < 0) return ThrowErrno(isolate, err, syscall, text + ":" + std::to_string(port));

  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  char host[INET6_ADDRSTRLEN] = "";
  int boundPort = 0;
  if (bound.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&bound);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    boundPort = ntohs(in6->sin6_port);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&bound);
    inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
    boundPort = ntohs(in4->sin_port);
  }
  result->Set(context, 0, v8::Integer::New(isolate, fd)).Check();
  result->Set(context, 1, Text(isolate, host)).Check();
  result->Set(context, 2, v8::Integer::New(isolate, boundPort)).Check();
  info.GetReturnValue().Set(result);
}

}  // namespace mp
