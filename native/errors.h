// errno -> a JS Error with .code (the errno name), .errno and .syscall, as Node's own errors.
#pragma once
#include <v8.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace mp {

const char* ErrnoName(int err);

inline void ThrowErrno(v8::Isolate* isolate, int err, const char* syscall, const std::string& detail = "") {
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  std::string message = std::string(syscall) + "(" + detail + ") failed: " + std::strerror(err) + " (" + ErrnoName(err) + ")";
  v8::Local<v8::Object> error = v8::Exception::Error(v8::String::NewFromUtf8(isolate, message.c_str()).ToLocalChecked()).As<v8::Object>();
  auto set = [&](const char* key, v8::Local<v8::Value> value) {
    error->Set(context, v8::String::NewFromUtf8(isolate, key).ToLocalChecked(), value).Check();
  };
  set("code", v8::String::NewFromUtf8(isolate, ErrnoName(err)).ToLocalChecked());
  set("errno", v8::Integer::New(isolate, -err));
  set("syscall", v8::String::NewFromUtf8(isolate, syscall).ToLocalChecked());
  isolate->ThrowException(error);
}

inline void ThrowTypeError(v8::Isolate* isolate, const char* message) {
  isolate->ThrowException(v8::Exception::TypeError(v8::String::NewFromUtf8(isolate, message).ToLocalChecked()));
}

}  // namespace mp
