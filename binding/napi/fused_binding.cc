// N-API entry points of the fused kernel (impl: 'fused', gradInto), its instruction set, the
// huge-page ATen allocator switch and the early release of results. (The benchmark floors,
// memoryFloor and computeFloor, are in binding/testing/, built into the test addon only.)
//
// crossEntropyFused(args, async) takes the same argument object as crossEntropy plus
//   impl: 'fused' | 'aten', gradInto: Float32Array | Float64Array | null
// and returns { loss: number | tensor, grad?: tensor, path: 'fused' | 'aten' }. Calls the
// kernel does not cover (fused_unsupported_reason) and impl 'aten' run ATen's path; with
// gradInto its gradient is then copied into the caller's buffer. Output buffers are
// allocated on the JS thread before any work starts (huge-page backed when large), so the
// sync and async paths share everything but where the work runs.
#include <napi.h>

#include "aten/cross_entropy.h"
#include "errors.h"
#include "kernels/fused.h"
#include "memory/allocator.h"
#include "memory/result_registry.h"
#include "napi/args.h"
#include "napi/async_task.h"
#include "napi/modules.h"
#include "napi/prop_names.h"
#include "napi/tensor_view.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace smoothce {
namespace {

// An output buffer handed to JavaScript as an ArrayBuffer: V8-allocated when small,
// huge_alloc'ed (2 MiB-aligned, MADV_HUGEPAGE) and external when large.
// Past the cap on unfinalized external buffers (allocator.h: a synchronous loop that
// never yields to the event loop) a V8-owned buffer instead, which the GC frees itself.
// Hands huge_alloc'ed memory `p` of `bytes` bytes to JavaScript as an external ArrayBuffer
// (freed back to the huge-page cache by its finalizer); frees it if that fails.
Napi::ArrayBuffer wrap_huge_buffer(Napi::Env env, void* p, size_t bytes) {
  // Reported to V8 as external memory (result_registry.h): the GC then collects dropped
  // results inside a loop that never yields, and their blocks go back to the cache early.
  return external_result(env, p, bytes, [p, bytes] { huge_free(p, bytes); });
}

Napi::ArrayBuffer new_output_buffer(Napi::Env env, size_t bytes) {
  if (bytes < kHugeThreshold) return Napi::ArrayBuffer::New(env, bytes);
  if (!external_allowed(bytes)) return owned_buffer(env, bytes);
  return wrap_huge_buffer(env, huge_alloc(bytes), bytes);
}

Napi::Object make_tensor(Napi::Env env, Napi::ArrayBuffer ab, size_t numel, const std::vector<int64_t>& shape,
                         at::ScalarType dtype) {
  Napi::Object obj = Napi::Object::New(env);
  if (dtype == at::kDouble) {
    obj.Set("data", Napi::Float64Array::New(env, numel, ab, 0));
  } else {
    obj.Set("data", Napi::Float32Array::New(env, numel, ab, 0));
  }
  Napi::Array s = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) s.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  obj.Set("shape", s);
  obj.Set("dtype", Napi::String::New(env, dtype_name(dtype)));
  return obj;
}

// huge_alloc'ed memory owned until handed to JavaScript (to_js); freed if it never is.
class HugeBlock {
 public:
  HugeBlock() = default;
  HugeBlock(HugeBlock&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(o.bytes_) {}
  HugeBlock& operator=(HugeBlock&& o) noexcept {
    if (this != &o) {
      free();
      p_ = std::exchange(o.p_, nullptr);
      bytes_ = o.bytes_;
    }
    return *this;
  }
  ~HugeBlock() { free(); }
  void allocate(size_t n, bool fault_in) {
    free();
    p_ = huge_alloc(n, fault_in);
    bytes_ = n;
  }
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }
  // An external ArrayBuffer over the block (wrap_huge_buffer owns it then, and frees it if that fails).
  Napi::ArrayBuffer to_js(Napi::Env env) { return wrap_huge_buffer(env, std::exchange(p_, nullptr), bytes_); }

 private:
  void free() {
    if (p_ != nullptr) huge_free(std::exchange(p_, nullptr), bytes_);
  }
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

struct FusedCall {
  CrossEntropyArgs args;
  std::vector<HostInput> holders;
  bool use_fused = false;
  FusedIsa isa = FusedIsa::Auto;
  int threads = 1;  // the calling thread's intra-op threads, applied on the worker too
  // gradInto (caller's memory) or a fresh output buffer for the gradient / 'none' loss.
  Napi::ObjectReference grad_into_pin;
  void* grad_into = nullptr;
  size_t grad_into_bytes = 0;
  Napi::Reference<Napi::ArrayBuffer> grad_buf, loss_buf;
  FusedOutputs out;
  std::vector<int64_t> loss_shape;
  size_t numel = 0, positions = 0;
  CrossEntropyResult aten;  // the ATen path's result
  // An async call's large gradient: huge_alloc'ed memory, faulted in by the worker before the
  // kernel writes it and made an ArrayBuffer only when the result is handed over (creating it,
  // and reporting its bytes to V8, on the JS thread at the start made V8 start marking there).
  HugeBlock own_grad;
};

// Reads input and target (host tensors only: device handles never come here), the loss
// options (napi/args.h, as crossEntropy does), plus impl / gradInto / isa.
void read_args(Napi::Env env, const Napi::Value& value, bool async, FusedCall& call) {
  ArgReader r(env, value, async, "crossEntropyFused", call.holders);
  const Napi::Object& o = r.object();
  CrossEntropyArgs& a = call.args;
  a.input = r.tensor(Prop::Input, "input", Role::Input);
  a.target = r.tensor(Prop::Target, "target", Role::Target);
  read_loss_options(r, a);

  Napi::Value impl = o.Get("impl");
  const std::string impl_s = impl.IsString() ? impl.As<Napi::String>().Utf8Value() : "fused";
  SMOOTHCE_THROW_RANGE_IF(env, impl_s != "fused" && impl_s != "aten", "impl must be 'fused' or 'aten'");
  // SMOOTHCE_FUSED_ISA=baseline|avx2 forces an instruction set (tests run both).
  if (const char* isa = std::getenv("SMOOTHCE_FUSED_ISA")) call.isa = parse_fused_isa(isa);

  Napi::Value gi = o.Get("gradInto");
  if (!gi.IsNull() && !gi.IsUndefined()) {
    SMOOTHCE_THROW_TYPE_IF(env, !gi.IsTypedArray(), "Expected a Float32Array or Float64Array for gradInto");
    SMOOTHCE_THROW_RANGE_IF(env, !a.want_grad, "gradInto was given but grad is false");
    Napi::TypedArray ta = gi.As<Napi::TypedArray>();
    const napi_typedarray_type want = a.input.storage == at::kDouble ? napi_float64_array : napi_float32_array;
    SMOOTHCE_THROW_TYPE_IF(env, ta.TypedArrayType() != want,
                           std::string("Expected a ") + (want == napi_float64_array ? "Float64Array" : "Float32Array") +
                               " for gradInto (the input's data type)");
    call.grad_into = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    call.grad_into_bytes = ta.ByteLength();
    call.grad_into_pin = Napi::Persistent(gi.As<Napi::Object>());
  }
  call.use_fused = impl_s == "fused" && fused_unsupported_reason(a).empty();
  // Getters run by the Gets above may have detached or resized a buffer read earlier.
  r.revalidate_all();
}

// Allocates what the chosen path writes into (on the JS thread).
void prepare_outputs(Napi::Env env, FusedCall& call, bool async) {
  const CrossEntropyArgs& a = call.args;
  size_t numel = 1;
  for (int64_t d : a.input.shape) numel *= static_cast<size_t>(d);
  call.numel = numel;
  if (call.grad_into) {
    run_or_throw(env, [&] { check_grad_into(a, call.grad_into, call.grad_into_bytes); });
  }
  if (!call.use_fused) return;
  const size_t esize = c10::elementSize(a.input.storage);
  const int64_t class_dim = a.input.shape.size() == 1 ? 0 : 1;
  for (size_t d = 0; d < a.input.shape.size(); ++d)
    if (static_cast<int64_t>(d) != class_dim) call.loss_shape.push_back(a.input.shape[d]);
  const size_t C = static_cast<size_t>(a.input.shape[class_dim]);
  call.positions = numel / C;
  if (a.want_grad) {
    if (call.grad_into) {
      call.out.grad = call.grad_into;
    } else {
      const size_t bytes = numel * esize;
      if (async && bytes >= kHugeThreshold && external_allowed(bytes)) {
        run_or_throw(env, [&] { call.own_grad.allocate(bytes, /*fault_in=*/false); });
        call.out.grad = call.own_grad.get();
      } else {
        Napi::ArrayBuffer ab = new_output_buffer(env, bytes);
        call.out.grad = ab.Data();
        call.grad_buf = Napi::Persistent(ab);
      }
    }
  }
  if (a.reduction == at::Reduction::None) {
    Napi::ArrayBuffer ab = new_output_buffer(env, call.positions * esize);
    call.out.loss = ab.Data();
    call.loss_buf = Napi::Persistent(ab);
  }
}

// The work itself: no N-API (runs on the libuv pool for async calls).
void execute(FusedCall& call) {
  use_num_threads(call.threads);
  if (call.own_grad.get() != nullptr) fault_in(call.own_grad.get(), call.own_grad.bytes());
  if (call.use_fused) {
    fused_cross_entropy(call.args, call.out, call.isa);
    return;
  }
  call.aten = cross_entropy(call.args);
  if (call.grad_into && call.aten.grad.defined()) {
    const at::Tensor& g = call.aten.grad;
    TORCH_CHECK(static_cast<size_t>(g.nbytes()) == call.grad_into_bytes, "gradient size mismatch");
    std::memcpy(call.grad_into, g.data_ptr(), call.grad_into_bytes);
    call.aten.grad = at::Tensor();
  }
}

Napi::Value result_to_js(Napi::Env env, FusedCall& call) {
  Napi::Object out = Napi::Object::New(env);
  const at::ScalarType dt = call.args.input.storage;
  if (call.use_fused) {
    if (call.args.reduction == at::Reduction::None) {
      out.Set("loss", make_tensor(env, call.loss_buf.Value(), call.positions, call.loss_shape, dt));
    } else {
      out.Set("loss", Napi::Number::New(env, call.out.scalar_loss));
    }
    if (call.own_grad.get() != nullptr) {
      out.Set("grad", make_tensor(env, call.own_grad.to_js(env), call.numel, call.args.input.shape, dt));
    } else if (!call.grad_buf.IsEmpty()) {
      out.Set("grad", make_tensor(env, call.grad_buf.Value(), call.numel, call.args.input.shape, dt));
    }
    out.Set("path", Napi::String::New(env, "fused"));
  } else {
    out.Set("loss", tensor_to_js(env, call.aten.loss));
    if (call.aten.grad.defined()) out.Set("grad", tensor_to_js(env, call.aten.grad));
    out.Set("path", Napi::String::New(env, "aten"));
  }
  return out;
}


Napi::Value CrossEntropyFused(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  release_collected(env);
  const bool async = info.Length() > 1 && info[1].ToBoolean().Value();
  FusedCall call;
  read_args(env, info[0], async, call);
  run_or_throw(env, [&] { call.threads = at::get_num_threads(); });
  prepare_outputs(env, call, async);
  if (async) {
    auto shared = std::make_shared<FusedCall>(std::move(call));
    return queue_task<bool>(
        env, "smoothce:crossEntropyFused",
        [shared] {
          execute(*shared);
          return true;
        },
        [shared](Napi::Env e, bool&) -> Napi::Value { return result_to_js(e, *shared); });
  }
  run_or_throw(env, [&] { execute(call); });
  return result_to_js(env, call);
}

// The synchronous small-call path of impl 'fused' (lib/cross-entropy.ts, tryFusedFast):
// positional arguments instead of an argument object, output buffers allocated by the
// caller, a number back. TypeScript has validated everything; the checks here only keep
// a wrong call from reading out of bounds.
//
//   crossEntropyFusedFast(input, outer, C, inner, target, prob, weight, reduction, ignoreIndex,
//                         labelSmoothing, grad, gradOutputScalar, gradOutput, gradInto, lossInto, lossOut)
//     input: Float32Array | Float64Array of outer·C·inner logits ([outer, C, inner] row-major)
//     target: BigInt64Array | Int32Array | Uint8Array of outer·inner indices, or (prob) the
//             input's type and size; weight, gradOutput: float typed arrays or null
//     gradInto: the gradient's buffer (input's type and size) when grad, or null to have it
//             allocated here; lossInto: the per-position losses when reduction is 0 (none);
//             lossOut: a Float64Array(1), needed with gradInto null
//   → the loss (mean/sum; NaN for none); with gradInto null the gradient's ArrayBuffer, the
//     loss then in lossOut[0]; undefined when the fused kernel does not handle the call
//     (the caller then takes the general path).
bool typed_view(const Napi::Value& v, napi_env env, napi_typedarray_type* type, void** data, size_t* length) {
  if (!v.IsTypedArray()) return false;
  napi_value buffer;
  size_t offset = 0;
  return napi_get_typedarray_info(env, v, type, length, data, &buffer, &offset) == napi_ok;
}

bool float_storage(napi_typedarray_type type, at::ScalarType* out) {
  if (type == napi_float32_array) *out = at::kFloat;
  else if (type == napi_float64_array) *out = at::kDouble;
  else return false;
  return true;
}

RawTensor raw_view(void* data, at::ScalarType dtype, std::vector<int64_t> shape) {
  RawTensor r;
  r.data = data;
  r.storage = r.compute = dtype;
  r.present = true;
  r.shape = std::move(shape);
  return r;
}

Napi::Value CrossEntropyFusedFast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  release_collected(env);
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 15, "crossEntropyFusedFast: 15 or 16 arguments expected");
  napi_typedarray_type type;
  void* data = nullptr;
  size_t length = 0;
  CrossEntropyArgs a;
  at::ScalarType dt;
  SMOOTHCE_THROW_TYPE_IF(env, !typed_view(info[0], env, &type, &data, &length) || !float_storage(type, &dt),
                         "crossEntropyFusedFast: input must be a Float32Array or Float64Array");
  const double outer_d = info[1].As<Napi::Number>().DoubleValue();
  const double c_d = info[2].As<Napi::Number>().DoubleValue();
  const double inner_d = info[3].As<Napi::Number>().DoubleValue();
  SMOOTHCE_THROW_RANGE_IF(env, !(outer_d >= 1 && c_d >= 1 && inner_d >= 1) || outer_d * c_d * inner_d != double(length),
                          "crossEntropyFusedFast: outer·C·inner must equal the input's length");
  const int64_t outer = static_cast<int64_t>(outer_d), C = static_cast<int64_t>(c_d), inner = static_cast<int64_t>(inner_d);
  std::vector<int64_t> shape = inner == 1 ? std::vector<int64_t>{outer, C} : std::vector<int64_t>{outer, C, inner};
  a.input = raw_view(data, dt, shape);
  const bool prob = info[5].ToBoolean().Value();
  SMOOTHCE_THROW_TYPE_IF(env, !typed_view(info[4], env, &type, &data, &length), "crossEntropyFusedFast: target must be a typed array");
  at::ScalarType tt;
  if (prob) {
    SMOOTHCE_THROW_TYPE_IF(env, !float_storage(type, &tt), "crossEntropyFusedFast: probability target must be a float array");
    SMOOTHCE_THROW_RANGE_IF(env, static_cast<int64_t>(length) != outer * C * inner, "crossEntropyFusedFast: target length");
    a.target = raw_view(data, tt, shape);
  } else {
    if (type == napi_bigint64_array) tt = at::kLong;
    else if (type == napi_int32_array) tt = at::kInt;
    else if (type == napi_uint8_array) tt = at::kByte;
    else return env.Undefined();
    SMOOTHCE_THROW_RANGE_IF(env, static_cast<int64_t>(length) != outer * inner, "crossEntropyFusedFast: target length");
    a.target = raw_view(data, tt, inner == 1 ? std::vector<int64_t>{outer} : std::vector<int64_t>{outer, inner});
  }
  if (!info[6].IsNull() && !info[6].IsUndefined()) {
    at::ScalarType wt;
    SMOOTHCE_THROW_TYPE_IF(env, !typed_view(info[6], env, &type, &data, &length) || !float_storage(type, &wt),
                           "crossEntropyFusedFast: weight must be a float typed array");
    a.weight = raw_view(data, wt, {static_cast<int64_t>(length)});
  }
  const double red = info[7].As<Napi::Number>().DoubleValue();
  SMOOTHCE_THROW_RANGE_IF(env, red != 0 && red != 1 && red != 2, "crossEntropyFusedFast: reduction");
  a.reduction = static_cast<int64_t>(red);
  bool lossless = false;
  a.ignore_index = info[8].As<Napi::BigInt>().Int64Value(&lossless);
  a.label_smoothing = info[9].As<Napi::Number>().DoubleValue();
  SMOOTHCE_THROW_RANGE_IF(env, !(a.label_smoothing >= 0 && a.label_smoothing <= 1), "crossEntropyFusedFast: labelSmoothing");
  a.want_grad = info[10].ToBoolean().Value();
  a.grad_output_scalar = info[11].As<Napi::Number>().DoubleValue();
  if (!info[12].IsNull() && !info[12].IsUndefined()) {
    at::ScalarType gt;
    SMOOTHCE_THROW_TYPE_IF(env, !typed_view(info[12], env, &type, &data, &length) || !float_storage(type, &gt),
                           "crossEntropyFusedFast: gradOutput must be a float typed array");
    a.grad_output = raw_view(data, gt, {static_cast<int64_t>(length)});
  }
  a.device = "cpu";
  if (!fused_unsupported_reason(a).empty()) return env.Undefined();

  const size_t esize = c10::elementSize(dt);
  const size_t positions = static_cast<size_t>(outer * inner);
  FusedOutputs out;
  // gradInto null: the gradient is allocated here, as huge-page memory that becomes an
  // ArrayBuffer only after the kernel ran (creating a large ArrayBuffer makes V8 start
  // marking, whose concurrent work slowed a two-thread kernel running meanwhile: 256x128256
  // fwd+grad 23 ms against 15-18 ms into an older buffer), or as a V8-owned buffer past
  // the external-buffer cap.
  HugeBlock own_grad;  // freed on every exit until it is handed over
  size_t own_bytes = 0;
  Napi::ArrayBuffer v8_grad;
  double* loss_out = nullptr;  // set exactly when the gradient is allocated here
  if (a.want_grad && (info[13].IsNull() || info[13].IsUndefined())) {
    own_bytes = static_cast<size_t>(outer * C * inner) * esize;
    napi_typedarray_type lt;
    void* ld = nullptr;
    size_t ll = 0;
    SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 16 || !typed_view(info[15], env, &lt, &ld, &ll) ||
                                    lt != napi_float64_array || ll < 1,
                           "crossEntropyFusedFast: a Float64Array for the loss is needed when gradInto is null");
    loss_out = static_cast<double*>(ld);
    if (own_bytes >= kHugeThreshold && external_allowed(own_bytes)) {
      run_or_throw(env, [&] { own_grad.allocate(own_bytes, /*fault_in=*/true); });
      out.grad = own_grad.get();
    } else {
      v8_grad = owned_buffer(env, own_bytes);
      out.grad = v8_grad.Data();
    }
  } else if (a.want_grad) {
    at::ScalarType gt;
    SMOOTHCE_THROW_TYPE_IF(env, !typed_view(info[13], env, &type, &data, &length) || !float_storage(type, &gt) || gt != dt,
                           "crossEntropyFusedFast: gradInto must be an array of the input's type");
    run_or_throw(env, [&] { check_grad_into(a, data, length * esize); });
    out.grad = data;
  }
  if (a.reduction == at::Reduction::None) {
    at::ScalarType lt;
    SMOOTHCE_THROW_TYPE_IF(env, !typed_view(info[14], env, &type, &data, &length) || !float_storage(type, &lt) || lt != dt ||
                                    length != positions,
                           "crossEntropyFusedFast: lossInto must be an array of the input's type, one element per position");
    // Defence in depth (TypeScript always passes a fresh array).
    run_or_throw(env, [&] { check_loss_into(a, data, length * esize, out.grad); });
    out.loss = data;
  }
  FusedIsa isa = FusedIsa::Auto;
  if (const char* name = std::getenv("SMOOTHCE_FUSED_ISA")) isa = parse_fused_isa(name);
  run_or_throw(env, [&] { fused_cross_entropy(a, out, isa); });
  const double loss = a.reduction == at::Reduction::None ? std::nan("") : out.scalar_loss;
  if (loss_out == nullptr) return Napi::Number::New(env, loss);
  // The gradient was allocated here: the loss goes into info[15][0], the buffer back.
  loss_out[0] = loss;
  if (!v8_grad.IsEmpty()) return v8_grad;
  return own_grad.to_js(env);
}

// hugeBuffer(bytes): an ArrayBuffer for a large output (2 MiB-aligned, MADV_HUGEPAGE,
// external; its pages fault in ~30× faster than malloc's on this kind of machine).
Napi::Value HugeBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  release_collected(env);
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsNumber(), "hugeBuffer: expected a byte count");
  const double bytes = info[0].As<Napi::Number>().DoubleValue();
  SMOOTHCE_THROW_RANGE_IF(env, !(bytes >= 0 && bytes <= 9007199254740991.0) || bytes != std::floor(bytes),
                          "hugeBuffer: byte count must be a non-negative integer");
  SMOOTHCE_THROW_RANGE_IF(env, bytes > 4294967296.0,
                          "hugeBuffer: " + std::to_string(static_cast<uint64_t>(bytes)) +
                              " bytes is more than the 2^32 bytes one external ArrayBuffer can hold in Node 20");
  try {
    return new_output_buffer(env, static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    throw coded(Napi::RangeError::New(env, "hugeBuffer: out of memory allocating " +
                                               std::to_string(static_cast<uint64_t>(bytes)) + " bytes"),
                "ERR_SMOOTHCE_NATIVE");
  }
}

// fusedIsa(isa?: string): the instruction set the kernel runs with ('avx2' or 'baseline').
Napi::Value FusedIsaName(const Napi::CallbackInfo& info) {
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  const char* isa = nullptr;
  run_or_throw(info.Env(), [&] { isa = fused_isa_name(parse_fused_isa(name)); });
  return Napi::String::New(info.Env(), isa);
}

// hugePageAllocator(enable?: boolean): installs/removes the huge-page CPU allocator for
// ATen's own allocations; returns whether it is installed (after the call).
Napi::Value HugePageAllocator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool now = false;
  if (info.Length() > 0 && info[0].IsBoolean()) {
    const bool enable = info[0].As<Napi::Boolean>().Value();
    run_or_throw(env, [&] { set_huge_page_aten_allocator(enable); });
  }
  run_or_throw(env, [&] { now = huge_page_aten_allocator_enabled(); });
  return Napi::Boolean::New(env, now);
}

// earlyRelease(on?: boolean): switches the early release of collected results
// (result_registry.h) and returns { enabled, tracked, released, externalBytes }.
Napi::Value EarlyRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && info[0].IsBoolean()) set_early_release(info[0].As<Napi::Boolean>().Value());

  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, early_release_enabled()));
  o.Set("tracked", Napi::Number::New(env, static_cast<double>(tracked_results())));
  o.Set("released", Napi::Number::New(env, static_cast<double>(early_releases())));
  o.Set("forcedCollections", Napi::Number::New(env, static_cast<double>(forced_collections())));
  o.Set("externalBytes", Napi::Number::New(env, static_cast<double>(external_bytes_outstanding())));
  return o;
}

// reclaim(): frees collected results early, asking for a collection when it may pay
// (result_registry.h). lib/ calls it before a call with a large output.
Napi::Value Reclaim(const Napi::CallbackInfo& info) {
  reclaim(info.Env());
  return info.Env().Undefined();
}

}  // namespace

void InitFused(Napi::Env env, Napi::Object exports) {
  // ATen's large allocations go through the huge-page cache (allocator.h); opt out with
  // SMOOTHCE_ATEN_ALLOCATOR=default.
  install_default_aten_allocator();
  start_core_helpers();
  exports.Set("crossEntropyFused", Napi::Function::New(env, CrossEntropyFused, "crossEntropyFused"));
  exports.Set("crossEntropyFusedFast", Napi::Function::New(env, CrossEntropyFusedFast, "crossEntropyFusedFast"));
  exports.Set("hugeBuffer", Napi::Function::New(env, HugeBuffer, "hugeBuffer"));
  exports.Set("fusedIsa", Napi::Function::New(env, FusedIsaName, "fusedIsa"));
  exports.Set("hugePageAllocator", Napi::Function::New(env, HugePageAllocator, "hugePageAllocator"));
  exports.Set("earlyRelease", Napi::Function::New(env, EarlyRelease, "earlyRelease"));
  exports.Set("reclaim", Napi::Function::New(env, Reclaim, "reclaim"));
}

}  // namespace smoothce
