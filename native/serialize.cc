// Structured clone without Node's v8.Serializer wrapper: V8's ValueSerializer writes a value into a
// buffer the caller reuses, and ValueDeserializer reads one straight out of shared memory. Node's
// wrapper costs a JS object, a Buffer and its finalizer per message, more than the clone itself.
//
// Typed arrays are V8's own format (not host objects): a Buffer arrives as a Uint8Array, and
// reduction.ts registers a reducer that brings it back as a Buffer.
#include "serialize.h"
#include "errors.h"

#include <cstdlib>
#include <cstring>

namespace mp {

namespace {

class Delegate : public v8::ValueSerializer::Delegate {
 public:
  explicit Delegate(v8::Isolate* isolate) : isolate_(isolate) {}
  void ThrowDataCloneError(v8::Local<v8::String> message) override {
    isolate_->ThrowException(v8::Exception::TypeError(message));
  }
  void* ReallocateBufferMemory(void* old_buffer, size_t size, size_t* actual_size) override {
    *actual_size = size;
    return realloc(old_buffer, size);
  }
  void FreeBufferMemory(void* buffer) override { free(buffer); }

 private:
  v8::Isolate* isolate_;
};

bool ViewOf(v8::Local<v8::Value> value, uint8_t** data, size_t* length) {
  if (!value->IsArrayBufferView()) return false;
  v8::Local<v8::ArrayBufferView> view = value.As<v8::ArrayBufferView>();
  std::shared_ptr<v8::BackingStore> store = view->Buffer()->GetBackingStore();
  *data = static_cast<uint8_t*>(store->Data()) + view->ByteOffset();
  *length = view->ByteLength();
  return true;
}

}  // namespace

// serialize(value, scratch: Uint8Array, offset) -> number | Uint8Array
// The clone's length when it fit into scratch at offset; otherwise a new Uint8Array of offset free
// bytes followed by the clone.
void Serialize(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  uint8_t* scratch = nullptr;
  size_t room = 0;
  if (!ViewOf(info[1], &scratch, &room) || !info[2]->IsUint32()) return ThrowTypeError(isolate, "serialize(value, scratch: Uint8Array, offset)");
  size_t offset = info[2].As<v8::Uint32>()->Value();
  room = offset <= room ? room - offset : 0;
  Delegate delegate(isolate);
  v8::ValueSerializer serializer(isolate, &delegate);
  serializer.WriteHeader();
  bool ok = false;
  if (!serializer.WriteValue(context, info[0]).To(&ok) || !ok) return;  // the TypeError is pending
  std::pair<uint8_t*, size_t> bytes = serializer.Release();
  if (bytes.second <= room) {
    memcpy(scratch + offset, bytes.first, bytes.second);
    free(bytes.first);
    return info.GetReturnValue().Set(static_cast<uint32_t>(bytes.second));
  }
  // Too large for scratch: a buffer of its own, with the same `offset` bytes free in front.
  size_t total = offset + bytes.second;
  uint8_t* owned = static_cast<uint8_t*>(realloc(bytes.first, total));
  if (owned == nullptr) {
    free(bytes.first);
    return ThrowErrno(isolate, ENOMEM, "serialize", "realloc");
  }
  memmove(owned + offset, owned, bytes.second);
  memset(owned, 0, offset);
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
      owned, total, [](void* data, size_t, void*) { free(data); }, nullptr);
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  info.GetReturnValue().Set(v8::Uint8Array::New(buffer, 0, total));
}

// deserialize(bytes: Uint8Array, offset, length) -> value. The bytes may be shared memory: V8 copies
// what it needs (strings, typed arrays) out of them.
void Deserialize(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  uint8_t* data = nullptr;
  size_t size = 0;
  if (!ViewOf(info[0], &data, &size) || !info[1]->IsUint32() || !info[2]->IsUint32()) {
    return ThrowTypeError(isolate, "deserialize(bytes: Uint8Array, offset, length)");
  }
  size_t offset = info[1].As<v8::Uint32>()->Value();
  size_t length = info[2].As<v8::Uint32>()->Value();
  if (offset > size || length > size - offset) return ThrowTypeError(isolate, "deserialize(): offset and length run past the bytes");
  v8::ValueDeserializer deserializer(isolate, data + offset, length);
  bool ok = false;
  if (!deserializer.ReadHeader(context).To(&ok) || !ok) return;
  v8::Local<v8::Value> value;
  if (deserializer.ReadValue(context).ToLocal(&value)) info.GetReturnValue().Set(value);
}

// Whether an object has own enumerable string-keyed properties besides its elements: what
// structured clone writes after an array's elements. V8 skips the indices here (Object.keys() in
// JS makes a string per index first, the cost of a long array itself).
void HasNamedProperties(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  if (info.Length() < 1 || !info[0]->IsObject()) return ThrowTypeError(isolate, "hasNamedProperties(object: object)");
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Array> names;
  if (!info[0].As<v8::Object>()
           ->GetPropertyNames(context, v8::KeyCollectionMode::kOwnOnly,
                              static_cast<v8::PropertyFilter>(v8::ONLY_ENUMERABLE | v8::SKIP_SYMBOLS),
                              v8::IndexFilter::kSkipIndices, v8::KeyConversionMode::kNoNumbers)
           .ToLocal(&names)) {
    return;  // a Proxy's trap threw: the exception propagates
  }
  info.GetReturnValue().Set(names->Length() > 0);
}

}  // namespace mp
