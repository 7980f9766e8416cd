#pragma once
#include <v8.h>

namespace mp {
// shmOpen(name, create, size) -> SharedArrayBuffer over a MAP_SHARED mapping of /dev/shm/<name>.
void ShmOpen(const v8::FunctionCallbackInfo<v8::Value>& info);
// shmUnlink(name) -> undefined; throws with .code (ENOENT when already gone).
void ShmUnlink(const v8::FunctionCallbackInfo<v8::Value>& info);
// randomFill(bytes: Uint8Array) -> undefined: the kernel's random bytes (getrandom), for names and keys.
void RandomFill(const v8::FunctionCallbackInfo<v8::Value>& info);
}  // namespace mp
