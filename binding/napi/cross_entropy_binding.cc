#include "napi/cross_entropy_binding.h"

#include "aten/cross_entropy.h"
#include "errors.h"
#include "memory/result_registry.h"
#include "napi/args.h"
#include "napi/async_task.h"
#include "napi/device_tensor.h"
#include "napi/prop_names.h"
#include "napi/tensor_view.h"

#include <memory>
#include <optional>
#include <vector>

namespace smoothce {
namespace {

// Everything one call needs, read from JS before any work starts. The HostInputs keep
// the memory behind args' RawTensors alive (pins or snapshot copies).
struct Call {
  CrossEntropyArgs args;
  std::vector<HostInput> holders;
};

Call read_call(Napi::Env env, const Napi::Value& value, bool async) {
  Call call;
  ArgReader r(env, value, async, "crossEntropy", call.holders);
  // A device tensor handle is used as it is (no copy); anything else is read as a
  // { data, shape, dtype } host tensor.
  Napi::Value in = r.get(Prop::Input);
  if (auto handle = device_tensor_of(env, in, "input")) {
    SMOOTHCE_THROW_TYPE_IF(env, !at::isFloatingType(handle->tensor.scalar_type()),
                           "Expected a floating-point DeviceTensor for input");
    take_device_tensor(*handle, call.args.input_tensor, call.args.input);
  } else {
    call.args.input = r.tensor(in, "input", Role::Input);
  }
  Napi::Value tg = r.get(Prop::Target);
  if (auto handle = device_tensor_of(env, tg, "target")) {
    take_device_tensor(*handle, call.args.target_tensor, call.args.target);
  } else {
    call.args.target = r.tensor(tg, "target", Role::Target);
  }
  read_loss_options(r, call.args);
  // A zero-element input can still ask for a huge 'none' loss (shape [2^31, 0]): refuse
  // before computing what could not be returned (tensor_to_js's 2^32-byte limit).
  if (call.args.reduction == 0 && call.args.input.shape.size() > 1) {
    uint64_t loss_numel = 1;
    bool too_big = false;
    for (size_t i = 0; i < call.args.input.shape.size(); ++i)
      if (i != 1) too_big = too_big || __builtin_mul_overflow(loss_numel, static_cast<uint64_t>(call.args.input.shape[i]), &loss_numel);
    const uint64_t elem = call.args.input.compute == at::kDouble || call.args.target.compute == at::kDouble ? 8 : 4;
    SMOOTHCE_THROW_RANGE_IF(env, too_big || loss_numel > (uint64_t{1} << 32) / elem,
                            "input's shape gives a 'none' loss of more than 2^32 bytes, more than one ArrayBuffer can hold");
  }
  // The Gets above may have run user code (getters, Proxies) that detached or resized a
  // buffer read earlier: check every pinned view now, with no JavaScript run after this.
  r.revalidate_all();
  return call;
}

// The value of a 0-dim result (CPU and contiguous after to_output), widened exactly to double.
double scalar_value(const at::Tensor& t) {
  if (t.device().is_cpu()) {
    switch (t.scalar_type()) {
      case at::kFloat: return static_cast<double>(*t.data_ptr<float>());
      case at::kDouble: return *t.data_ptr<double>();
      default: break;
    }
  }
  return t.item<double>();
}

// A 'mean'/'sum' loss goes back as a plain number (exact: float32 and float64 both fit a
// double), which spares the small-call path an ArrayBuffer, a typed array and a shape.
Napi::Object result_to_js(Napi::Env env, const CrossEntropyResult& r, int64_t reduction, bool grad_on_device) {
  Napi::Object out = Napi::Object::New(env);
  if (reduction != at::Reduction::None && r.loss.dim() == 0) {
    // Read the one element directly: to(kDouble) + item() cost two ATen dispatches (a
    // copy kernel and _local_scalar_dense), a quarter of a small call's native time.
    out.Set(prop(env, Prop::Loss), Napi::Number::New(env, scalar_value(r.loss)));
  } else {
    out.Set(prop(env, Prop::Loss), tensor_to_js(env, r.loss));
  }
  if (r.grad.defined()) out.Set("grad", grad_on_device ? wrap_device_tensor(env, r.grad) : tensor_to_js(env, r.grad));
  return out;
}


}  // namespace

Napi::Value CrossEntropyEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool async = info.Length() > 1 && info[1].ToBoolean().Value();
  release_collected(env);  // before any large allocation (result_registry.h)
  Call call = read_call(env, info[0], async);
  if (async) {
    // The Call (pins, snapshot copies) lives until the task is destroyed on the JS thread.
    auto shared = std::make_shared<Call>(std::move(call));
    return queue_task<CrossEntropyResult>(
        env, "smoothce:crossEntropy",
        [shared] {
          enter_worker_thread();  // runs on a libuv thread: ATen only, no N-API
          return cross_entropy(shared->args);
        },
        [shared](Napi::Env e, CrossEntropyResult& r) -> Napi::Value { return result_to_js(e, r, shared->args.reduction, shared->args.grad_on_device); });
  }
  CrossEntropyResult result;
  run_or_throw(env, [&] { result = cross_entropy(call.args); });
  return result_to_js(env, result, call.args.reduction, call.args.grad_on_device);
}

}  // namespace smoothce
