// N-API entry point for the loss: reads the argument object, then runs the pure ATen
// function either right away (sync) or on the libuv pool (async, resolving a Promise).
// Both paths share read_call() and result_to_js(); only where Execute runs differs. The
// arguments are read through napi/args.h, as every op's are.
#pragma once

#include <napi.h>

namespace smoothce {

// crossEntropy(args: NativeArgs, async: boolean): NativeResult | Promise<NativeResult>
Napi::Value CrossEntropyEntry(const Napi::CallbackInfo& info);

}  // namespace smoothce
