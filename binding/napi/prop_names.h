// Property names read on every call, created once per environment (napi_env instance
// data) and kept in one referenced array (Node-API 8 cannot reference a string itself):
// napi_get_named_property would otherwise create and internalise a string from a C
// string on each Get.
#pragma once

#include <napi.h>

namespace smoothce {

enum class Prop : int {
  Input, Target, Weight, GradOutput, Reduction, IgnoreIndex, LabelSmoothing, Grad, GradOnDevice, Device,
  Data, Shape, Dtype, Loss, Count
};

// The addon's one napi_env instance data slot: the property names, and the DeviceTensor
// constructor (set by InitDeviceTensor, for handles made from C++: wrap_device_tensor).
struct EnvData {
  Napi::ObjectReference strings;
  Napi::FunctionReference device_tensor_ctor;
};

inline EnvData& env_data(Napi::Env env) {
  static const char* const kNames[] = {"input", "target", "weight", "gradOutput", "reduction", "ignoreIndex",
                                       "labelSmoothing", "grad", "gradOnDevice", "device", "data", "shape", "dtype", "loss"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Prop::Count), "one name per Prop");
  EnvData* names = env.GetInstanceData<EnvData>();
  if (names == nullptr) {
    names = new EnvData();
    Napi::Array strings = Napi::Array::New(env, static_cast<size_t>(Prop::Count));
    for (int i = 0; i < static_cast<int>(Prop::Count); ++i)
      strings.Set(static_cast<uint32_t>(i), Napi::String::New(env, kNames[i]));
    names->strings = Napi::Persistent(static_cast<Napi::Object>(strings));
    env.SetInstanceData(names);  // deleted (references released) when the environment is torn down
  }
  return *names;
}

inline Napi::String prop(Napi::Env env, Prop p) {
  return env_data(env).strings.Value().Get(static_cast<uint32_t>(p)).As<Napi::String>();
}

}  // namespace smoothce
