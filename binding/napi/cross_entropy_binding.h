// N-API entry point for the loss: reads the argument object, then runs the pure ATen
// function either right away (sync) or on the libuv pool (async, resolving a Promise).
// Both paths share read_call() and result_to_js(); only where Execute runs differs.
#pragma once

#include <napi.h>

#include "aten/cross_entropy.h"
#include "napi/tensor_view.h"

#include <vector>

namespace smoothce {

// Moves `in` (what keeps a tensor's memory alive) into `holders`; returns its RawTensor.
RawTensor keep(std::vector<HostInput>& holders, HostInput&& in);

// Reads what crossEntropy and crossEntropyFused share after input and target: weight,
// gradOutput (a number or a host tensor; what keeps tensor memory alive goes to
// `holders`) and the options reduction, ignoreIndex, labelSmoothing, grad and device.
// TypeScript has validated them; these checks are the defence in depth.
void read_shared_args(Napi::Env env, const Napi::Object& o, bool async, CrossEntropyArgs& a,
                      std::vector<HostInput>& holders);

// crossEntropy(args: NativeArgs, async: boolean): NativeResult | Promise<NativeResult>
Napi::Value CrossEntropyEntry(const Napi::CallbackInfo& info);

}  // namespace smoothce
