// prctl(PR_SET_PDEATHSIG): the kernel sends `signal` to this process when the thread that forked
// it ends, even when the parent was SIGKILLed and could run no cleanup.
#include "errors.h"

#include <sys/prctl.h>
#include <unistd.h>

namespace mp {

// setParentDeathSignal(signal) -> the parent pid after setting it (the caller compares it with the
// pid it expects: a parent that died before the call has already re-parented us).
void SetParentDeathSignal(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (!info[0]->IsInt32()) return ThrowTypeError(isolate, "setParentDeathSignal(signal: number)");
  int signal = info[0].As<v8::Int32>()->Value();
  if (prctl(PR_SET_PDEATHSIG, signal) != 0) return ThrowErrno(isolate, errno, "prctl", "PR_SET_PDEATHSIG");
  info.GetReturnValue().Set(static_cast<int32_t>(getppid()));
}

}  // namespace mp
