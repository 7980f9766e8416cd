// Large message buffers whose memory is reused once V8 frees them (see recycle.cc).
#pragma once
#include <node.h>

namespace mp {
void AllocRecycled(const v8::FunctionCallbackInfo<v8::Value>& info);
void TrimRecycled(const v8::FunctionCallbackInfo<v8::Value>& info);
void RecycledStats(const v8::FunctionCallbackInfo<v8::Value>& info);
}  // namespace mp
