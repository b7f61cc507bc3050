// N-API marshalling for the c10d process group (binding/aten/distributed.{h,cc}).
// Every collective runs on the libuv pool; the JS side queues a group's calls so that
// they are issued in order, as collectives must be.
#include <napi.h>

#include "napi/async_task.h"
#include "aten/distributed.h"
#include "errors.h"
#include "napi/modules.h"
#include "napi/tensor_view.h"

#include <cmath>
#include <memory>

namespace smoothce {
namespace {

using GroupPtr = std::shared_ptr<dist::Group>;

GroupPtr unwrap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsExternal(), "Expected a process group handle");
  return *info[0].As<Napi::External<GroupPtr>>().Data();
}

Napi::Value Available(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), dist::available()); }

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsObject(), "Expected an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  dist::GroupOptions opts;
  auto num = [&](const char* k) {
    Napi::Value v = o.Get(k);
    SMOOTHCE_THROW_TYPE_IF(env, !v.IsNumber(), std::string("Expected a number for ") + k);
    return v.As<Napi::Number>().DoubleValue();
  };
  auto str = [&](const char* k) {
    Napi::Value v = o.Get(k);
    SMOOTHCE_THROW_TYPE_IF(env, !v.IsString(), std::string("Expected a string for ") + k);
    return v.As<Napi::String>().Utf8Value();
  };
  opts.host = str("host");
  const double port = num("port"), rank = num("rank"), world = num("worldSize"), timeout = num("timeoutMs");
  SMOOTHCE_THROW_RANGE_IF(env, port != std::floor(port) || rank != std::floor(rank) || world != std::floor(world) ||
                                   timeout != std::floor(timeout),
                          "port, rank, worldSize and timeoutMs must be integers");
  SMOOTHCE_THROW_RANGE_IF(env, !(port >= 1 && port <= 65535), "port must be in [1, 65535]");
  SMOOTHCE_THROW_RANGE_IF(env, !(world >= 1 && world <= 65536), "worldSize must be in [1, 65536]");
  SMOOTHCE_THROW_RANGE_IF(env, !(rank >= 0 && rank < world), "rank must be in [0, worldSize)");
  SMOOTHCE_THROW_RANGE_IF(env, !(timeout >= 1 && timeout <= 86400000), "timeoutMs must be in [1, 86400000]");
  opts.port = static_cast<uint16_t>(port);
  opts.rank = static_cast<int>(rank);
  opts.world_size = static_cast<int>(world);
  opts.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout));
  opts.backend = str("backend");
  Napi::Value iface = o.Get("interface");
  if (iface.IsString()) opts.interface = iface.As<Napi::String>().Utf8Value();
  // storeLayout: 1 or 2 (torch.distributed 1.x or 2.x); absent: the linked LibTorch's.
  Napi::Value layout = o.Get("storeLayout");
  if (!layout.IsUndefined()) {
    SMOOTHCE_THROW_TYPE_IF(env, !layout.IsNumber(), "Expected a number for storeLayout");
    const double l = layout.As<Napi::Number>().DoubleValue();
    SMOOTHCE_THROW_RANGE_IF(env, l != 1 && l != 2, "storeLayout must be 1 or 2");
    opts.layout = l == 1 ? dist::GroupOptions::StoreLayout::Torch1 : dist::GroupOptions::StoreLayout::Torch2;
  }
  // checkCollectives: false leaves out the header each collective starts with (default true).
  Napi::Value check = o.Get("checkCollectives");
  if (!check.IsUndefined()) {
    SMOOTHCE_THROW_TYPE_IF(env, !check.IsBoolean(), "Expected a boolean for checkCollectives");
    opts.check_collectives = check.As<Napi::Boolean>().Value();
  }
  return queue_task<GroupPtr>(
      env, "smoothce:distInit", [opts] { return dist::create_group(opts); },
      [](Napi::Env e, GroupPtr& g) -> Napi::Value {
        // Garbage-collected without destroy(): the group (and its sockets) is released
        // when the last reference goes, including those held by collectives in flight.
        return Napi::External<GroupPtr>::New(e, new GroupPtr(g), [](Napi::Env, GroupPtr* p) { delete p; });
      });
}

dist::ReduceOp parse_op(Napi::Env env, const Napi::Value& v) {
  SMOOTHCE_THROW_TYPE_IF(env, !v.IsString(), "Expected 'sum', 'product', 'min' or 'max' for op");
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "sum") return dist::ReduceOp::Sum;
  if (s == "product") return dist::ReduceOp::Product;
  if (s == "min") return dist::ReduceOp::Min;
  if (s == "max") return dist::ReduceOp::Max;
  throw range_error(env, "Expected 'sum', 'product', 'min' or 'max' for op but received '" + s + "'");
}

// Input tensors are snapshot-copied on the JS thread (tensor_view), so the caller's
// buffer may change while the collective runs; the owned copy travels with the task.
struct TensorArg {
  HostInput host;
  at::Tensor view() const { return view_raw(host.raw); }
};

Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GroupPtr g = unwrap(info);
  auto arg = std::make_shared<TensorArg>(TensorArg{read_tensor(env, info[1], "tensor", Role::Target, true)});
  const dist::ReduceOp op = parse_op(env, info[2]);
  return queue_task<at::Tensor>(
      env, "smoothce:allReduce", [g, arg, op] { return dist::all_reduce(*g, arg->view(), op); },
      [arg](Napi::Env e, at::Tensor& t) -> Napi::Value { return tensor_to_js(e, t); });
}

Napi::Value AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GroupPtr g = unwrap(info);
  auto arg = std::make_shared<TensorArg>(TensorArg{read_tensor(env, info[1], "tensor", Role::Target, true)});
  return queue_task<std::vector<at::Tensor>>(
      env, "smoothce:allGather", [g, arg] { return dist::all_gather(*g, arg->view()); },
      [arg](Napi::Env e, std::vector<at::Tensor>& ts) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, ts.size());
        for (size_t i = 0; i < ts.size(); ++i) out.Set(static_cast<uint32_t>(i), tensor_to_js(e, ts[i]));
        return out;
      });
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  GroupPtr g = unwrap(info);
  return queue_task<bool>(
      info.Env(), "smoothce:barrier", [g] { dist::barrier(*g); return true; },
      [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
}

Napi::Value Destroy(const Napi::CallbackInfo& info) {
  GroupPtr g = unwrap(info);
  run_or_throw(info.Env(), [&] { dist::destroy(*g); });
  return info.Env().Undefined();
}

}  // namespace

void InitDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("distAvailable", Napi::Function::New(env, Available, "distAvailable"));
  exports.Set("distInit", Napi::Function::New(env, Init, "distInit"));
  exports.Set("distAllReduce", Napi::Function::New(env, AllReduce, "distAllReduce"));
  exports.Set("distAllGather", Napi::Function::New(env, AllGather, "distAllGather"));
  exports.Set("distBarrier", Napi::Function::New(env, Barrier, "distBarrier"));
  exports.Set("distDestroy", Napi::Function::New(env, Destroy, "distDestroy"));
}

}  // namespace smoothce
