// Test and benchmark hooks (memoryFloor, computeFloor, atenPathCounts, probeAsyncThreads).
// Built only into the test addon, build/Testing/smoothce_testing.node (CMakeLists.txt,
// target smoothce_testing: the shipped addon's objects plus binding/testing/, with addon.cc
// compiled with SMOOTHCE_TESTING); never into the shipped smoothce.node. Tests and bench
// scripts load the test addon as THE addon (SMOOTHCE_NATIVE), so the hooks see the same
// static state (counters, allocator) as the API they measure.
#pragma once

#include <napi.h>

namespace smoothce {

void InitTesting(Napi::Env env, Napi::Object exports);  // testing/hooks.cc

}  // namespace smoothce
