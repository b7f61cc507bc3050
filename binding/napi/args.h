// Argument reading shared by the N-API entry points (the marshalling layer): one call's
// argument object read into the pure ATen layer's types. Every op's binding reads its
// tensors and options here, so the checks and their messages are the same everywhere.
// TypeScript has validated the arguments; these checks are the defence in depth for a
// binding called directly.
#pragma once

#include <napi.h>

#include "aten/cross_entropy.h"
#include "napi/prop_names.h"
#include "napi/tensor_view.h"

#include <cstdint>
#include <string>
#include <vector>

namespace smoothce {

// One call's argument object. What keeps its host tensors' memory alive (pins, or snapshot
// copies for an async call) goes into `holders`, which the call owns (it outlives the reader
// when the work runs on a libuv thread). Property names are a Prop (cached strings) or, for
// an op's own options, a plain C string. Throws a TypeError naming `op` for a non-object.
class ArgReader {
 public:
  ArgReader(Napi::Env env, const Napi::Value& value, bool async, const char* op, std::vector<HostInput>& holders);

  Napi::Env env() const { return env_; }
  bool async() const { return async_; }
  const Napi::Object& object() const { return obj_; }
  Napi::Value get(Prop p) const { return obj_.Get(prop(env_, p)); }
  Napi::Value get(const char* key) const { return obj_.Get(key); }

  // A { data, shape, dtype } host tensor, viewed without a copy (or snapshot when async).
  RawTensor tensor(const Napi::Value& v, const char* name, Role role);
  template <class K>
  RawTensor tensor(K key, const char* name, Role role) { return tensor(get(key), name, role); }
  // The same, or an absent RawTensor (present == false) for null / undefined.
  RawTensor optional_tensor(const Napi::Value& v, const char* name, Role role);
  template <class K>
  RawTensor optional_tensor(K key, const char* name, Role role) { return optional_tensor(get(key), name, role); }
  // Moves `in` into the holders; returns its RawTensor (for tensors read by other means).
  RawTensor keep(HostInput&& in);

  // Once every Get is done: checks every pinned view again (a getter or Proxy run by a later
  // Get may have detached or resized a buffer read earlier). No JavaScript may run after it.
  void revalidate_all() const;

 private:
  Napi::Env env_;
  Napi::Object obj_;
  bool async_;
  std::vector<HostInput>& holders_;
};

// Single options, each checked and named in its error message.
int64_t read_reduction(Napi::Env env, const Napi::Value& v);        // 0 none, 1 mean, 2 sum
int64_t read_ignore_index(Napi::Env env, const Napi::Value& v);     // a bigint or an integral number
double read_label_smoothing(Napi::Env env, const Napi::Value& v);   // in [0, 1]
std::string read_device(const Napi::Value& v, std::string fallback = "cpu");  // a string, else fallback

// gradOutput: a number (stored in `scalar`), a host tensor (returned), or null / undefined.
RawTensor read_grad_output(ArgReader& r, double& scalar);

// What every loss op shares after its own tensors: weight, gradOutput, reduction,
// ignoreIndex, labelSmoothing, grad, gradOnDevice and device (crossEntropy,
// crossEntropyFused, and new losses that fill a CrossEntropyArgs).
void read_loss_options(ArgReader& r, CrossEntropyArgs& a);

}  // namespace smoothce
