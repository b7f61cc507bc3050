// Module initialisation only: exports the binding's functions. No state is kept in
// globals, so the addon loads (and unloads) cleanly in worker_threads.
#include <napi.h>

#include "aten/cross_entropy.h"
#include "errors.h"
#include "napi/cross_entropy_binding.h"
#include "napi/modules.h"

#include <string>
#ifdef SMOOTHCE_TESTING
#include "testing/testing.h"
#endif

namespace smoothce {
namespace {

Napi::Value TorchVersion(const Napi::CallbackInfo& info) {
  std::string v;
  run_or_throw(info.Env(), [&] { v = torch_version(); });
  return Napi::String::New(info.Env(), v);
}

Napi::Value CudaBuilt(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), cuda_built()); }

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  bool ok = false;
  run_or_throw(info.Env(), [&] { ok = cuda_available(); });
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  int64_t n = 0;
  run_or_throw(info.Env(), [&] { n = cuda_device_count(); });
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsNumber(), "Expected a number for threads");
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  SMOOTHCE_THROW_RANGE_IF(env, n < 1 || n > 1024, "threads must be an integer in [1, 1024]");
  run_or_throw(env, [&] { set_num_threads(static_cast<int>(n)); });
  return env.Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  int n = 0;
  run_or_throw(info.Env(), [&] { n = get_num_threads(); });
  return Napi::Number::New(info.Env(), n);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropyEntry, "crossEntropy"));
  exports.Set("torchVersion", Napi::Function::New(env, TorchVersion, "torchVersion"));
  exports.Set("cudaBuilt", Napi::Function::New(env, CudaBuilt, "cudaBuilt"));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable, "cudaAvailable"));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount, "cudaDeviceCount"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  // Other modules add their exports here, one line each (declared in modules.h).
  InitDeviceTensor(env, exports);
  InitDistributed(env, exports);
  InitCalibration(env, exports);
  InitFused(env, exports);
  InitLinearCrossEntropy(env, exports);
#ifdef SMOOTHCE_TESTING
  // The test addon only (CMakeLists.txt, smoothce_testing): test and benchmark hooks.
  InitTesting(env, exports);
#endif
  return exports;
}

}  // namespace
}  // namespace smoothce

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return smoothce::Init(env, exports); }

NODE_API_MODULE(smoothce, InitModule)
