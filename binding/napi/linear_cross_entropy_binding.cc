// N-API entry point of the fused linear cross-entropy (binding/aten/linear_cross_entropy.h):
// reads the argument object, then runs the one ATen implementation right away (sync) or on the
// libuv pool (async). Async calls copy their host inputs first (read_tensor's snapshot), so the
// caller may change or transfer its buffers as soon as the call returns.
//
// linearCrossEntropy(args, async) with args:
//   { input, linearWeight, target: tensor | DeviceTensor, linearBias: tensor | null,
//     weight, gradOutput, reduction, ignoreIndex, labelSmoothing, grad, device (as crossEntropy),
//     workingMemory: bytes, gradInto: { input, linearWeight, linearBias: typed array | null } | null }
//   → { loss: number | tensor, grad?: { input?, linearWeight?, linearBias? } } (parts written into
//     gradInto are left out)
#include <napi.h>

#include "aten/linear_cross_entropy.h"
#include "errors.h"
#include "memory/result_registry.h"
#include "napi/args.h"
#include "napi/async_task.h"
#include "napi/device_tensor.h"
#include "napi/modules.h"
#include "napi/tensor_view.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace smoothce {
namespace {

struct LinearCall {
  LinearCrossEntropyArgs args;
  std::vector<HostInput> holders;
  std::vector<Napi::ObjectReference> into_pins;
};

// A tensor argument that may be a DeviceTensor handle (used in place) or a host tensor.
void read_maybe_device(ArgReader& r, const char* name, Role role, RawTensor& raw, at::Tensor& device_tensor) {
  Napi::Value v = r.get(name);
  if (auto handle = device_tensor_of(r.env(), v, name)) {
    take_device_tensor(*handle, device_tensor, raw);
    return;
  }
  raw = r.tensor(v, name, role);
}

// One gradInto part: a Float32Array/Float64Array of `want` elements, or nothing.
void* read_into(Napi::Env env, const Napi::Object& into, const char* name, size_t want, at::ScalarType host,
                LinearCall& call) {
  Napi::Value v = into.Get(name);
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  const std::string param = std::string("gradInto.") + name;
  SMOOTHCE_THROW_TYPE_IF(env, !v.IsTypedArray(), "Expected a Float32Array or Float64Array for " + param);
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  const napi_typedarray_type t = host == at::kDouble ? napi_float64_array : napi_float32_array;
  SMOOTHCE_THROW_TYPE_IF(env, ta.TypedArrayType() != t,
                         std::string("Expected a ") + (host == at::kDouble ? "Float64Array" : "Float32Array") + " for " +
                             param + " (the input's data type)");
  SMOOTHCE_THROW_RANGE_IF(env, ta.ElementLength() != want,
                          "Expected " + std::to_string(want) + " elements for " + param + " but received " +
                              std::to_string(ta.ElementLength()));
  call.into_pins.push_back(Napi::Persistent(v.As<Napi::Object>()));
  return static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

size_t numel_of(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

std::shared_ptr<LinearCall> read_call(Napi::Env env, const Napi::Value& value, bool async) {
  auto call = std::make_shared<LinearCall>();
  call->holders.reserve(7);
  ArgReader r(env, value, async, "linearCrossEntropy", call->holders);
  const Napi::Object& o = r.object();
  LinearCrossEntropyArgs& a = call->args;
  read_maybe_device(r, "input", Role::Input, a.input, a.input_tensor);
  read_maybe_device(r, "linearWeight", Role::Input, a.linear_weight, a.linear_weight_tensor);
  read_maybe_device(r, "target", Role::Target, a.target, a.target_tensor);
  a.linear_bias = r.optional_tensor("linearBias", "linearBias", Role::Weight);

  // weight, gradOutput, reduction, ignoreIndex, labelSmoothing, grad, device: as every loss reads them.
  CrossEntropyArgs shared;
  read_loss_options(r, shared);
  a.weight = shared.weight;
  a.grad_output = shared.grad_output;
  a.grad_output_scalar = shared.grad_output_scalar;
  a.reduction = shared.reduction;
  a.ignore_index = shared.ignore_index;
  a.label_smoothing = shared.label_smoothing;
  a.want_grad = shared.want_grad;
  a.device = shared.device;

  Napi::Value wm = o.Get("workingMemory");
  if (wm.IsNumber()) {
    const double bytes = wm.As<Napi::Number>().DoubleValue();
    SMOOTHCE_THROW_RANGE_IF(env, !(bytes >= 1 && bytes <= 9007199254740991.0),
                            "workingMemory must be a positive number of bytes");
    a.working_bytes = static_cast<int64_t>(bytes);
  }

  Napi::Value gi = o.Get("gradInto");
  if (!gi.IsNull() && !gi.IsUndefined()) {
    SMOOTHCE_THROW_TYPE_IF(env, !gi.IsObject(), "Expected an object { input, linearWeight, linearBias } for gradInto");
    SMOOTHCE_THROW_RANGE_IF(env, !a.want_grad, "gradInto was given but grad is false");
    Napi::Object into = gi.As<Napi::Object>();
    const at::ScalarType host = a.input.storage == at::kDouble ? at::kDouble : at::kFloat;
    a.grad_input_into = read_into(env, into, "input", numel_of(a.input.shape), host, *call);
    a.grad_linear_weight_into = read_into(env, into, "linearWeight", numel_of(a.linear_weight.shape), host, *call);
    if (a.linear_bias.present)
      a.grad_linear_bias_into = read_into(env, into, "linearBias", numel_of(a.linear_bias.shape), host, *call);
  }
  // Getters run by the Gets above may have detached or resized a buffer read earlier.
  r.revalidate_all();
  return call;
}

Napi::Value result_to_js(Napi::Env env, const LinearCrossEntropyResult& r, const LinearCrossEntropyArgs& a) {
  Napi::Object out = Napi::Object::New(env);
  if (a.reduction != at::Reduction::None) {
    out.Set("loss", Napi::Number::New(env, r.loss.to(at::kDouble).item<double>()));
  } else {
    out.Set("loss", tensor_to_js(env, r.loss.contiguous()));
  }
  if (a.want_grad) {
    Napi::Object g = Napi::Object::New(env);
    if (r.grad_input.defined()) g.Set("input", tensor_to_js(env, r.grad_input));
    if (r.grad_linear_weight.defined()) g.Set("linearWeight", tensor_to_js(env, r.grad_linear_weight));
    if (r.grad_linear_bias.defined()) g.Set("linearBias", tensor_to_js(env, r.grad_linear_bias));
    out.Set("grad", g);
  }
  out.Set("blockRows", Napi::Number::New(env, static_cast<double>(r.block_rows)));
  return out;
}

Napi::Value LinearCrossEntropyEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool async = info.Length() > 1 && info[1].ToBoolean().Value();
  release_collected(env);  // before any large allocation (result_registry.h)
  std::shared_ptr<LinearCall> call = read_call(env, info[0], async);
  if (async) {
    return queue_task<LinearCrossEntropyResult>(
        env, "smoothce:linearCrossEntropy",
        [call] {
          enter_worker_thread();  // a libuv thread: ATen only, no N-API
          return linear_cross_entropy(call->args);
        },
        [call](Napi::Env e, LinearCrossEntropyResult& r) -> Napi::Value { return result_to_js(e, r, call->args); });
  }
  LinearCrossEntropyResult result;
  run_or_throw(env, [&] { result = linear_cross_entropy(call->args); });
  return result_to_js(env, result, call->args);
}

// linearCrossEntropyInfo(): { blas, poolFreeBuffers, poolFreeBytes, poolAllocations, defaultWorkingMemory }
Napi::Value LinearCrossEntropyInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::string blas;
  run_or_throw(env, [&] { blas = blas_info(); });
  const LinearCePoolStats s = linear_ce_pool_stats();
  o.Set("blas", Napi::String::New(env, blas));
  o.Set("poolFreeBuffers", Napi::Number::New(env, static_cast<double>(s.free_buffers)));
  o.Set("poolFreeBytes", Napi::Number::New(env, static_cast<double>(s.free_bytes)));
  o.Set("poolAllocations", Napi::Number::New(env, static_cast<double>(s.allocations)));
  o.Set("defaultWorkingMemory", Napi::Number::New(env, static_cast<double>(kLinearCeDefaultWorkingBytes)));
  return o;
}

}  // namespace

void InitLinearCrossEntropy(Napi::Env env, Napi::Object exports) {
  exports.Set("linearCrossEntropy", Napi::Function::New(env, LinearCrossEntropyEntry, "linearCrossEntropy"));
  exports.Set("linearCrossEntropyInfo", Napi::Function::New(env, LinearCrossEntropyInfo, "linearCrossEntropyInfo"));
}

}  // namespace smoothce
