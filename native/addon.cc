// mp_native: the only native code of multiproc. Context-aware (NODE_MODULE_INIT), so it loads in
// the main thread and in every worker thread.
#include <node.h>
#include <cstring>

#include "errors.h"
#include "futex.h"
#include "futex-uring.h"
#include "recycle.h"
#include "serialize.h"
#include "shm.h"

namespace mp {

void SetParentDeathSignal(const v8::FunctionCallbackInfo<v8::Value>& info);
void ListenSocket(const v8::FunctionCallbackInfo<v8::Value>& info);
void ShareFd(const v8::FunctionCallbackInfo<v8::Value>& info);
void TakeFd(const v8::FunctionCallbackInfo<v8::Value>& info);
void UnshareFd(const v8::FunctionCallbackInfo<v8::Value>& info);

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

static void Export(v8::Local<v8::Context> context, v8::Local<v8::Object> exports, const char* name, v8::FunctionCallback callback) {
  v8::Isolate* isolate = context->GetIsolate();
  v8::Local<v8::Function> function = v8::FunctionTemplate::New(isolate, callback)->GetFunction(context).ToLocalChecked();
  v8::Local<v8::String> key = v8::String::NewFromUtf8(isolate, name).ToLocalChecked();
  function->SetName(key);
  exports->Set(context, key, function).Check();
}

}  // namespace mp

NODE_MODULE_INIT(/* exports, module, context */) {
  mp::Export(context, exports, "shmOpen", mp::ShmOpen);
  mp::Export(context, exports, "shmUnlink", mp::ShmUnlink);
  mp::Export(context, exports, "randomFill", mp::RandomFill);
  mp::Export(context, exports, "futexWait", mp::FutexWait);
  mp::Export(context, exports, "futexWake", mp::FutexWake);
  mp::Export(context, exports, "futexWaitAsync", mp::FutexWaitAsync);
  mp::Export(context, exports, "futexCancel", mp::FutexCancel);
  mp::Export(context, exports, "futexWaiter", mp::FutexWaiter);
  mp::Export(context, exports, "schedYield", mp::SchedYield);
  mp::Export(context, exports, "setParentDeathSignal", mp::SetParentDeathSignal);
  mp::Export(context, exports, "serialize", mp::Serialize);
  mp::Export(context, exports, "deserialize", mp::Deserialize);
  mp::Export(context, exports, "hasNamedProperties", mp::HasNamedProperties);
  mp::Export(context, exports, "allocRecycled", mp::AllocRecycled);
  mp::Export(context, exports, "trimRecycled", mp::TrimRecycled);
  mp::Export(context, exports, "recycledStats", mp::RecycledStats);
  mp::Export(context, exports, "listenSocket", mp::ListenSocket);
  mp::Export(context, exports, "shareFd", mp::ShareFd);
  mp::Export(context, exports, "takeFd", mp::TakeFd);
  mp::Export(context, exports, "unshareFd", mp::UnshareFd);
}
