#pragma once
#include <v8.h>

namespace mp {

void Serialize(const v8::FunctionCallbackInfo<v8::Value>& info);
void Deserialize(const v8::FunctionCallbackInfo<v8::Value>& info);
void HasNamedProperties(const v8::FunctionCallbackInfo<v8::Value>& info);

}  // namespace mp
