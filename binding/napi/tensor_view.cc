#include "napi/tensor_view.h"

#include "memory/allocator.h"
#include "errors.h"
#include "kernels/fused.h"
#include "napi/prop_names.h"
#include "memory/result_registry.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

namespace smoothce {
namespace {

struct DtypeInfo {
  const char* name;
  napi_typedarray_type array;
  const char* array_name;
  at::ScalarType storage;
  at::ScalarType compute;
};

// The dtype table. bfloat16/float16 travel as float32 data and are converted at this
// boundary; int32 targets are converted once to int64 (ATen's CPU kernel reads int64).
constexpr DtypeInfo kDtypes[] = {
    {"float32", napi_float32_array, "Float32Array", at::kFloat, at::kFloat},
    {"float64", napi_float64_array, "Float64Array", at::kDouble, at::kDouble},
    {"int32", napi_int32_array, "Int32Array", at::kInt, at::kLong},
    {"int64", napi_bigint64_array, "BigInt64Array", at::kLong, at::kLong},
    {"uint8", napi_uint8_array, "Uint8Array", at::kByte, at::kByte},
    {"bfloat16", napi_float32_array, "Float32Array", at::kFloat, at::kBFloat16},
    {"float16", napi_float32_array, "Float32Array", at::kFloat, at::kHalf},
};
static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE float sizes");
static_assert(sizeof(int64_t) == 8 && sizeof(int32_t) == 4, "integer sizes");

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsArray()) return "an array";
  if (v.IsString()) return "a string";
  if (v.IsNumber()) return "a number";
  if (v.IsBoolean()) return "a boolean";
  return "a value of type " + std::string(v.IsObject() ? "object" : "other");
}

}  // namespace

Napi::ArrayBuffer owned_buffer(Napi::Env env, size_t bytes) {
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, bytes);
  // Node's allocator zero-fills with calloc, which leaves a fresh mapping untouched. On
  // the development VM a synchronous loop of 1024x32000 gradients past the cap took
  // 90-100 ms a call with 4 KiB faults, ~30 ms with this advice.
  if (bytes >= kHugeThreshold) advise_huge(ab.Data(), bytes);
  return ab;
}

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kByte: return "uint8";
    default: return "unsupported";
  }
}

HostInput read_tensor(Napi::Env env, const Napi::Value& value, const char* name, Role role, bool snapshot) {
  const std::string n(name);
  SMOOTHCE_THROW_TYPE_IF(env, !value.IsObject() || value.IsArray(),
                         "Expected a tensor object { data, shape, dtype } for " + n + " but received " +
                             describe(value));
  Napi::Object obj = value.As<Napi::Object>();
  Napi::Value dtype_v = obj.Get(prop(env, Prop::Dtype));
  SMOOTHCE_THROW_TYPE_IF(env, !dtype_v.IsString(), "Expected a string for " + n + ".dtype but received " + describe(dtype_v));
  const std::string dtype = dtype_v.As<Napi::String>().Utf8Value();
  const DtypeInfo* info = find_dtype(dtype);
  SMOOTHCE_THROW_TYPE_IF(env, info == nullptr, "Unsupported dtype '" + dtype + "' for " + n);
  if (role == Role::Input || role == Role::Weight || role == Role::GradOutput) {
    SMOOTHCE_THROW_TYPE_IF(env, info->storage != at::kFloat && info->storage != at::kDouble,
                           "Expected a floating-point dtype for " + n + " but received '" + dtype + "'");
  }

  Napi::Value shape_v = obj.Get(prop(env, Prop::Shape));
  SMOOTHCE_THROW_TYPE_IF(env, !shape_v.IsArray(), "Expected an array of dimensions for " + n + ".shape but received " +
                                                      describe(shape_v));
  Napi::Array shape = shape_v.As<Napi::Array>();
  const uint32_t rank = shape.Length();
  SMOOTHCE_THROW_RANGE_IF(env, rank > 64, n + ".shape has " + std::to_string(rank) + " dimensions (at most 64)");
  HostInput out;
  out.raw.shape.reserve(rank);
  uint64_t numel = 1;
  bool overflow = false;
  for (uint32_t i = 0; i < rank; ++i) {
    Napi::Value d = shape.Get(i);
    SMOOTHCE_THROW_TYPE_IF(env, !d.IsNumber(), n + ".shape[" + std::to_string(i) + "] is not a number");
    const double dv = d.As<Napi::Number>().DoubleValue();
    // Range first: casting NaN, Infinity or values past 2^63 to int64 is undefined behaviour.
    SMOOTHCE_THROW_RANGE_IF(env, !(dv >= 0 && dv <= 9007199254740991.0) || dv != std::floor(dv),
                            n + ".shape[" + std::to_string(i) + "] must be a non-negative integer");
    const uint64_t du = static_cast<uint64_t>(dv);
    overflow = overflow || __builtin_mul_overflow(numel, du, &numel);
    out.raw.shape.push_back(static_cast<int64_t>(du));
  }
  // The data pointer is read last: the Gets above may run user code (getters, Proxies)
  // that detaches or resizes the buffer, so no JavaScript may run between here and the
  // snapshot copy below (or, for pinned views, the re-check in revalidate()).
  Napi::Value data_v = obj.Get(prop(env, Prop::Data));
  SMOOTHCE_THROW_TYPE_IF(env, !data_v.IsTypedArray(),
                         "Expected a " + std::string(info->array_name) + " for " + n + ".data but received " +
                             describe(data_v));
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  size_t byte_offset = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, data_v, &type, &length, &data, &buffer, &byte_offset),
                       HostInput());
  SMOOTHCE_THROW_TYPE_IF(env, type != info->array,
                         "Expected a " + std::string(info->array_name) + " for " + n + ".data (dtype '" + dtype + "')");

  SMOOTHCE_THROW_RANGE_IF(env, overflow || numel != length,
                          n + ".data has " + std::to_string(length) + " elements but its shape needs " +
                              (overflow ? std::string("more than 2^64") : std::to_string(numel)));

  out.raw.storage = info->storage;
  out.raw.compute = info->compute;
  out.raw.present = true;
  out.raw.data = data;

  bool is_plain_buffer = false;
  napi_is_arraybuffer(env, buffer, &is_plain_buffer);
  if (snapshot && is_plain_buffer && length > 0) {
    // Async call on an ordinary ArrayBuffer: copy now, on the JS thread, so that the
    // caller may transfer, detach, mutate or drop it while the work is in flight.
    const size_t bytes = length * c10::elementSize(info->storage);
    // Huge-page backed when large: a fresh 128 MB copy then faults in ~12 ms, not ~0.4 s.
    // Not faulted in first: each piece is faulted in and copied by one thread, on every core.
    out.owned = empty_huge({static_cast<int64_t>(bytes)}, at::kByte, /*fault_in=*/false);
    copy_into_fresh(out.owned.data_ptr(), data, bytes);
    out.raw.data = out.owned.data_ptr();
  } else {
    out.pin = Napi::Persistent(data_v.As<Napi::Object>());
    out.view_data = data;
    out.view_length = length;
    out.name = name;
  }
  return out;
}

void revalidate(Napi::Env env, const HostInput& in) {
  if (in.pin.IsEmpty()) return;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  NAPI_THROW_IF_FAILED_VOID(
      env, napi_get_typedarray_info(env, in.pin.Value(), &type, &length, &data, nullptr, nullptr));
  SMOOTHCE_THROW_TYPE_IF(env, data != in.view_data || length != in.view_length,
                         std::string("The ArrayBuffer of ") + in.name +
                             ".data was detached or resized while the arguments were being read");
}


Napi::Object tensor_to_js(Napi::Env env, const at::Tensor& t) {
  const at::ScalarType st = t.scalar_type();
  const int64_t numel = t.numel();
  const int64_t bytes = numel * static_cast<int64_t>(t.element_size());
  // Node 20 refuses external ArrayBuffers past node::Buffer::kMaxLength (2^32 bytes on
  // 64-bit); it then frees the memory through the finalizer and node-addon-api frees the
  // finalizer data again (a double free, abort). Refuse such results before creating one.
  constexpr int64_t kMaxResultBytes = int64_t{1} << 32;
  if (bytes > kMaxResultBytes) {
    throw coded(Napi::RangeError::New(env, "the result has " + std::to_string(numel) + " elements (" +
                                         std::to_string(bytes) + " bytes), more than the 2^32 bytes " +
                                         "one ArrayBuffer can hold"),
                "ERR_SMOOTHCE_NATIVE");
  }
  Napi::ArrayBuffer ab;
  // Small results are copied into a plain ArrayBuffer: cheaper than an external buffer,
  // whose finalizer costs a weak reference and a GC callback per call.
  constexpr int64_t kCopyBelowBytes = 64 * 1024;
  if (numel == 0) {
    ab = Napi::ArrayBuffer::New(env, 0);
  } else if (bytes <= kCopyBelowBytes) {
    ab = Napi::ArrayBuffer::New(env, static_cast<size_t>(bytes));
    std::memcpy(ab.Data(), t.data_ptr(), static_cast<size_t>(bytes));
  } else if (!external_allowed(static_cast<size_t>(bytes))) {
    // Too many external results wait for their finalizers (a synchronous loop that never
    // yields): a V8-owned copy, which the GC frees by itself; the tensor goes now.
    ab = owned_buffer(env, static_cast<size_t>(bytes));
    std::memcpy(ab.Data(), t.data_ptr(), static_cast<size_t>(bytes));
  } else {
    // The buffer keeps a reference to the tensor's storage; releasing it drops that.
    auto holder = std::make_shared<at::Tensor>(t);
    ab = external_result(env, t.data_ptr(), static_cast<size_t>(bytes), [holder] { *holder = at::Tensor(); });
  }
  Napi::Value data;
  switch (st) {
    case at::kFloat: data = Napi::Float32Array::New(env, numel, ab, 0); break;
    case at::kDouble: data = Napi::Float64Array::New(env, numel, ab, 0); break;
    case at::kLong: data = Napi::BigInt64Array::New(env, numel, ab, 0); break;
    case at::kInt: data = Napi::Int32Array::New(env, numel, ab, 0); break;
    case at::kByte: data = Napi::Uint8Array::New(env, numel, ab, 0); break;
    default: throw coded(Napi::TypeError::New(env, std::string("cannot return a tensor of dtype ") + c10::toString(st)), "ERR_SMOOTHCE_NATIVE");
  }
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("data", data);
  obj.Set("shape", shape);
  obj.Set("dtype", Napi::String::New(env, dtype_name(st)));
  return obj;
}

}  // namespace smoothce
