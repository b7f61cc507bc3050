#include "napi/device_tensor.h"

#include "aten/cross_entropy.h"
#include "errors.h"
#include "napi/modules.h"
#include "napi/prop_names.h"
#include "napi/tensor_view.h"

#include <atomic>
#include <cstring>

namespace smoothce {
namespace {

// Marks the objects this module creates, so that a look-alike JS object is never
// unwrapped (no per-environment state needed: safe in worker_threads).
constexpr napi_type_tag kDeviceTensorTag = {0x736d6f6f74686365ULL, 0x6465766963657431ULL};

// Marks the External that wrap_device_tensor() passes to the constructor: only C++ can
// create it, and no other External (a process group handle, say) is ever adopted.
constexpr napi_type_tag kAdoptTag = {0x736d6f6f74686365ULL, 0x61646f7074656e31ULL};

std::atomic<int64_t> g_live{0};

// The dtype a JS caller names for a tensor of this ATen dtype, and back.
at::ScalarType host_dtype_of(at::ScalarType t) {
  return (t == at::kBFloat16 || t == at::kHalf) ? at::kFloat : t;
}

at::ScalarType storage_dtype_of(const std::string& name) {
  if (name == "float64") return at::kDouble;
  if (name == "int32") return at::kInt;
  if (name == "int64") return at::kLong;
  if (name == "uint8") return at::kByte;
  return at::kFloat;  // float32, bfloat16, float16
}

class DeviceTensor : public Napi::ObjectWrap<DeviceTensor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DeviceTensor",
                       {
                           InstanceMethod<&DeviceTensor::ToCPU>("toCPU"),
                           InstanceMethod<&DeviceTensor::Dispose>("dispose"),
                           InstanceAccessor<&DeviceTensor::Shape>("shape"),
                           InstanceAccessor<&DeviceTensor::DType>("dtype"),
                           InstanceAccessor<&DeviceTensor::Device>("device"),
                           InstanceAccessor<&DeviceTensor::Disposed>("disposed"),
                       });
  }

  // The name JavaScript uses for a tensor computed natively in this ATen dtype.
  static std::string compute_dtype_name(at::ScalarType t) {
    if (t == at::kBFloat16) return "bfloat16";
    if (t == at::kHalf) return "float16";
    return dtype_name(t);
  }

  // The dtype a caller named for a tensor read from JavaScript (int32 targets are held as int64).
  static std::string logical_dtype(const RawTensor& r) {
    if (r.compute == at::kBFloat16 || r.compute == at::kHalf) return compute_dtype_name(r.compute);
    return r.storage == at::kInt ? "int32" : dtype_name(r.storage);
  }

  // new DeviceTensor(tensor, device): copies the { data, shape, dtype } tensor to the
  // device once (a CPU handle owns a copy too: the caller's buffer stays the caller's).
  // From C++ only (wrap_device_tensor): new DeviceTensor(External<at::Tensor>) adopts a
  // tensor computed natively, without a copy.
  explicit DeviceTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceTensor>(info) {
    Napi::Env env = info.Env();
    if (info.Length() == 1 && info[0].IsExternal() &&
        info[0].As<Napi::External<at::Tensor>>().CheckTypeTag(&kAdoptTag)) {
      tensor_ = std::move(*info[0].As<Napi::External<at::Tensor>>().Data());
      dtype_ = compute_dtype_name(tensor_.scalar_type());
      Register(env);
      return;
    }
    SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 2 || !info[1].IsString(),
                           "Expected (tensor, device) for DeviceTensor: use toDevice(tensor, device)");
    const std::string spec = info[1].As<Napi::String>().Utf8Value();
    HostInput in = read_tensor(env, info[0], "tensor", Role::Target, /*snapshot=*/false);
    // The dtype read_tensor validated, not a second Get: a getter could answer
    // differently, or detach the buffer in between.
    dtype_ = logical_dtype(in.raw);
    revalidate(env, in);
    run_or_throw(env, [&] {
      const at::Device device = parse_device(spec);
      at::Tensor viewed = view_raw(in.raw);
      tensor_ = viewed.to(device, viewed.scalar_type(), /*non_blocking=*/false, /*copy=*/true).contiguous();
    });
    Register(env);
  }

  ~DeviceTensor() override { Release(); }

  // Called with a usable env after the object was collected: returns the accounted
  // external memory to V8, then the destructor frees the tensor.
  void Finalize(Napi::Env env) override {
    if (bytes_ > 0 && tensor_.defined()) Napi::MemoryManagement::AdjustExternalMemory(env, -bytes_);
    bytes_ = 0;
  }

  const at::Tensor& tensor(Napi::Env env, const char* name) const {
    if (!tensor_.defined()) {
      Napi::Error err = Napi::Error::New(
          env, std::string(name) == "this" ? std::string("DeviceTensor was disposed; it cannot be used after dispose()")
                                           : std::string(name) + " is a DeviceTensor that was disposed; it cannot be used after dispose()");
      err.Set("code", Napi::String::New(env, "ERR_SMOOTHCE_DISPOSED"));
      throw err;
    }
    return tensor_;
  }

 private:
  // Counts the handle as live, tells V8 about host memory it holds, and tags it.
  void Register(Napi::Env env) {
    bytes_ = tensor_.is_cpu() ? static_cast<int64_t>(tensor_.numel() * tensor_.element_size()) : 0;
    if (bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, bytes_);
    ++g_live;
    Value().TypeTag(&kDeviceTensorTag);
  }

  void Release() {
    if (tensor_.defined()) {
      tensor_ = at::Tensor();
      --g_live;
    }
  }

  Napi::Value ToCPU(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const at::Tensor& t = tensor(env, "this");
    at::Tensor host;
    const at::ScalarType want = storage_dtype_of(dtype_);
    run_or_throw(env, [&] { host = t.to(at::kCPU, want, /*non_blocking=*/false, /*copy=*/true).contiguous(); });
    Napi::Object out;
    if (want == at::kByte) {
      // tensor_to_js has no uint8 case: copy into a fresh buffer.
      Napi::Uint8Array data = Napi::Uint8Array::New(env, static_cast<size_t>(host.numel()));
      if (host.numel() > 0) std::memcpy(data.Data(), host.data_ptr(), static_cast<size_t>(host.numel()));
      out = Napi::Object::New(env);
      out.Set("data", data);
      out.Set("shape", Shape(info));
    } else {
      out = tensor_to_js(env, host);
    }
    out.Set("dtype", Napi::String::New(env, dtype_));
    return out;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (bytes_ > 0 && tensor_.defined()) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -bytes_);
    bytes_ = 0;
    Release();
    return info.Env().Undefined();
  }

  Napi::Value Shape(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const at::Tensor& t = tensor(env, "this");
    Napi::Array shape = Napi::Array::New(env, t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) {
      shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
    }
    return shape;
  }

  Napi::Value DType(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), dtype_); }

  Napi::Value Device(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const at::Tensor& t = tensor(env, "this");
    std::string device;
    run_or_throw(env, [&] { device = t.device().str(); });
    return Napi::String::New(env, device);
  }

  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_.defined()); }

  at::Tensor tensor_;
  std::string dtype_;
  int64_t bytes_ = 0;
};

Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsString(), "Expected a device string");
  std::string normalized;
  run_or_throw(env, [&] { normalized = parse_device(info[0].As<Napi::String>().Utf8Value()).str(); });
  return Napi::String::New(env, normalized);
}

Napi::Value LiveDeviceTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(live_device_tensors()));
}

Napi::Value WorkerNumThreads(const Napi::CallbackInfo& info) {
  int n = 0;
  run_or_throw(info.Env(), [&] { n = worker_num_threads(); });
  return Napi::Number::New(info.Env(), n);
}

}  // namespace

int64_t live_device_tensors() { return g_live.load(); }

std::optional<DeviceTensorRef> device_tensor_of(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsObject()) return std::nullopt;
  Napi::Object obj = value.As<Napi::Object>();
  if (!obj.CheckTypeTag(&kDeviceTensorTag)) return std::nullopt;
  DeviceTensor* wrap = DeviceTensor::Unwrap(obj);
  SMOOTHCE_THROW_TYPE_IF(env, wrap == nullptr, std::string("Invalid DeviceTensor for ") + name);
  const at::Tensor& t = wrap->tensor(env, name);
  return DeviceTensorRef{t, host_dtype_of(t.scalar_type())};
}

Napi::Value wrap_device_tensor(Napi::Env env, at::Tensor tensor) {
  Napi::FunctionReference& ctor = env_data(env).device_tensor_ctor;
  if (ctor.IsEmpty()) throw coded(Napi::Error::New(env, "DeviceTensor is not initialised in this environment"), "ERR_SMOOTHCE_NATIVE");
  Napi::External<at::Tensor> ext = Napi::External<at::Tensor>::New(env, &tensor);
  ext.TypeTag(&kAdoptTag);
  return ctor.New({ext});  // the constructor moves the tensor out of `tensor`
}

void InitDeviceTensor(Napi::Env env, Napi::Object exports) {
  run_or_throw(env, [] { init_thread_policy(); });
  Napi::Function ctor = DeviceTensor::Define(env);
  env_data(env).device_tensor_ctor = Napi::Persistent(ctor);
  exports.Set("DeviceTensor", ctor);
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice, "checkDevice"));
  exports.Set("liveDeviceTensors", Napi::Function::New(env, LiveDeviceTensors, "liveDeviceTensors"));
  exports.Set("workerNumThreads", Napi::Function::New(env, WorkerNumThreads, "workerNumThreads"));
}

void take_device_tensor(const DeviceTensorRef& handle, at::Tensor& tensor, RawTensor& raw) {
  tensor = handle.tensor;
  raw.storage = handle.host_dtype;
  raw.compute = handle.tensor.scalar_type();
  raw.shape = handle.tensor.sizes().vec();
  raw.present = true;
}

}  // namespace smoothce
