// Each binding module (calibration, device tensors, fused kernel, distributed, ...)
// exposes one function that adds its exports; addon.cc calls them all from Init.
#pragma once

#include <napi.h>

namespace smoothce {

// void InitExample(Napi::Env env, Napi::Object exports);
void InitDeviceTensor(Napi::Env env, Napi::Object exports);  // device_tensor.cc
void InitDistributed(Napi::Env env, Napi::Object exports);  // distributed_binding.cc

void InitCalibration(Napi::Env env, Napi::Object exports);  // calibration_binding.cc

void InitFused(Napi::Env env, Napi::Object exports);  // fused_binding.cc

void InitLinearCrossEntropy(Napi::Env env, Napi::Object exports);  // linear_cross_entropy_binding.cc

}  // namespace smoothce
