// Marshalling between JavaScript tensor objects ({ data, shape, dtype }) and the
// pure ATen layer's RawTensor descriptors. Inputs are viewed, not copied, except
// when an async call asks for a snapshot (see HostInput).
#pragma once

#include <napi.h>

#include "aten/cross_entropy.h"

#include <string>

namespace smoothce {

// A RawTensor plus what keeps its memory valid: a reference that pins the JS typed
// array, and for async snapshots an ATen-owned copy of the bytes.
struct HostInput {
  RawTensor raw;
  Napi::ObjectReference pin;
  at::Tensor owned;
  // For pinned (not copied) views: what the typed array looked like when read.
  void* view_data = nullptr;
  size_t view_length = 0;
  const char* name = "";
};

enum class Role { Input, Target, Weight, GradOutput };

// Reads `value` ({ data, shape, dtype }); `name` is used in error messages.
// snapshot == true copies the bytes (async calls on non-shared ArrayBuffers: the caller
// may then mutate, transfer or drop its buffer while the call is in flight).
HostInput read_tensor(Napi::Env env, const Napi::Value& value, const char* name, Role role, bool snapshot);

// Throws a TypeError if the pinned typed array behind `in` no longer has the memory it
// had when read (user code run by a later getter detached or resized its buffer).
// Call after every argument has been read, with no JavaScript run in between.
void revalidate(Napi::Env env, const HostInput& in);

// A CPU tensor as { data, shape, dtype }; the data is an external ArrayBuffer that
// owns a reference to the tensor's storage (no copy). Throws a RangeError for a tensor
// larger than Node's largest external ArrayBuffer (2^32 bytes).
Napi::Object tensor_to_js(Napi::Env env, const at::Tensor& t);

// A V8-owned ArrayBuffer for an output of `bytes` bytes (the GC frees it by itself). A large
// one's untouched pages are advised for transparent huge pages first (allocator.h,
// advise_huge), so that writing it faults 2 MiB at a time.
Napi::ArrayBuffer owned_buffer(Napi::Env env, size_t bytes);

const char* dtype_name(at::ScalarType t);

}  // namespace smoothce
