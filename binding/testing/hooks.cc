// The test and benchmark hooks (see testing.h): N-API marshalling over the kernels' floor
// passes and the ATen layer's counters, through the one choke point (run_or_throw,
// queue_task) like every other entry point.
#include "testing/testing.h"

#include "aten/cross_entropy.h"
#include "aten/format.h"
#include "errors.h"
#include "kernels/fused.h"
#include "napi/async_task.h"

#include <cmath>
#include <cstdint>

namespace smoothce {
namespace {

// memoryFloor(data, out?): one read pass over data (returns its sum), or with `out` (same
// type and length) one read+write pass out[i] = data[i] / 2. For benchmarks.
Napi::Value MemoryFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsTypedArray(), "Expected a Float32Array or Float64Array");
  Napi::TypedArray in = info[0].As<Napi::TypedArray>();
  const napi_typedarray_type type = in.TypedArrayType();
  SMOOTHCE_THROW_TYPE_IF(env, type != napi_float32_array && type != napi_float64_array,
                         "Expected a Float32Array or Float64Array");
  const at::ScalarType dt = type == napi_float64_array ? at::kDouble : at::kFloat;
  const void* src = static_cast<uint8_t*>(in.ArrayBuffer().Data()) + in.ByteOffset();
  const int64_t n = static_cast<int64_t>(in.ElementLength());
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    SMOOTHCE_THROW_TYPE_IF(env, !info[1].IsTypedArray(), "Expected a typed array for out");
    Napi::TypedArray out = info[1].As<Napi::TypedArray>();
    SMOOTHCE_THROW_RANGE_IF(env, out.TypedArrayType() != type || out.ElementLength() != in.ElementLength(),
                            "out must have the type and length of data");
    void* dst = static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset();
    run_or_throw(env, [&] { floor_read_write_pass(src, dst, n, dt); });
    return env.Undefined();
  }
  double s = 0;
  run_or_throw(env, [&] { s = floor_read_pass(src, n, dt); });
  return Napi::Number::New(env, s);
}

// computeFloor(units): register-only multiply-add work over the kernel's threads (returns
// a sum). For benchmarks: how much a second thread gives when memory plays no part.
Napi::Value ComputeFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsNumber(), "computeFloor: units must be a number");
  const double units = info[0].As<Napi::Number>().DoubleValue();
  SMOOTHCE_THROW_RANGE_IF(env, !(units >= 1 && units <= 1e7) || std::floor(units) != units,
                          "computeFloor: units must be an integer from 1 to 1e7, got " + js_number(units));
  double s = 0;
  run_or_throw(env, [&] { s = floor_compute_pass(static_cast<int64_t>(units)); });
  return Napi::Number::New(env, s);
}

// atenPathCounts(): { shortcutForward, explicitBackward, reference, rowBlocks } since load.
Napi::Value AtenPathCountsEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AtenPathCounts c;
  run_or_throw(env, [&] { c = aten_path_counts(); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("shortcutForward", Napi::Number::New(env, static_cast<double>(c.shortcut_forward)));
  o.Set("explicitBackward", Napi::Number::New(env, static_cast<double>(c.explicit_backward)));
  o.Set("reference", Napi::Number::New(env, static_cast<double>(c.reference)));
  o.Set("rowBlocks", Napi::Number::New(env, static_cast<double>(c.row_blocks)));
  return o;
}

// probeAsyncThreads(): the intra-op thread count a libuv pool thread uses for a loss call
// (what the async entry points apply before computing), as a Promise.
Napi::Value ProbeAsyncThreads(const Napi::CallbackInfo& info) {
  return queue_task<int>(
      info.Env(), "smoothce:threadProbe",
      [] {
        enter_worker_thread();  // as every async entry point does on its pool thread
        return get_num_threads();
      },
      [](Napi::Env e, int& n) -> Napi::Value { return Napi::Number::New(e, n); });
}

}  // namespace

void InitTesting(Napi::Env env, Napi::Object exports) {
  exports.Set("memoryFloor", Napi::Function::New(env, MemoryFloor, "memoryFloor"));
  exports.Set("computeFloor", Napi::Function::New(env, ComputeFloor, "computeFloor"));
  exports.Set("atenPathCounts", Napi::Function::New(env, AtenPathCountsEntry, "atenPathCounts"));
  exports.Set("probeAsyncThreads", Napi::Function::New(env, ProbeAsyncThreads, "probeAsyncThreads"));
}

}  // namespace smoothce
