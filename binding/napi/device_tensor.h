// Device-resident tensors: a JS handle (Napi::ObjectWrap) that owns an at::Tensor on a
// device ('cpu', 'cuda', 'cuda:N'), so that repeated loss calls on the same data do not
// copy it again. The handle is freed by dispose() or when it is garbage-collected.
#pragma once

#include <napi.h>

#include "aten/cross_entropy.h"

#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace smoothce {

// What a handle holds, for the marshalling layer. `host_dtype` is the dtype results
// derived from it go back to JavaScript in (float32 for bfloat16/float16 tensors).
struct DeviceTensorRef {
  at::Tensor tensor;
  at::ScalarType host_dtype;
};

// If `value` is a device tensor handle, returns what it holds; a disposed handle throws
// an Error naming `name`. Anything else: std::nullopt (the caller reads it as a plain
// { data, shape, dtype } tensor).
std::optional<DeviceTensorRef> device_tensor_of(Napi::Env env, const Napi::Value& value, const char* name);

// Takes a handle's tensor as an op's argument, in place (no copy): `tensor` holds it, and
// `raw` describes it (its host dtype, compute dtype and shape) as a host tensor would be.
void take_device_tensor(const DeviceTensorRef& handle, at::Tensor& tensor, RawTensor& raw);

// A new handle that owns `tensor` (no copy): how a result computed natively, such as a
// gradient left on its device, goes back to JavaScript. Its dtype is the tensor's
// ('bfloat16'/'float16' for reduced-precision tensors).
Napi::Value wrap_device_tensor(Napi::Env env, at::Tensor tensor);

// Number of handles whose tensor is still alive (not disposed, not collected), in this
// process (all threads and worker_threads together).
int64_t live_device_tensors();

}  // namespace smoothce
