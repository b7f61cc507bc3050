// Pure ATen layer: no napi.h here. Everything in this header can be called from a
// plain C++ program (see test/native/), which is how the native tests exercise it.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace smoothce {

// A host buffer described without any JavaScript type. `storage` is the element type
// of the memory at `data`; `compute` is the dtype ATen computes in (they differ for
// bfloat16/float16 inputs given as float32 data, and for int32 targets).
struct RawTensor {
  void* data = nullptr;
  std::vector<int64_t> shape;
  at::ScalarType storage = at::kFloat;
  at::ScalarType compute = at::kFloat;
  bool present = false;
};

struct CrossEntropyArgs {
  RawTensor input;
  RawTensor target;
  RawTensor weight;       // present == false: no class weights
  RawTensor grad_output;  // present == false: use grad_output_scalar
  double grad_output_scalar = 1.0;
  int64_t reduction = at::Reduction::Mean;  // 0 none, 1 mean, 2 sum (at::Reduction)
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  bool want_grad = false;
  // Leave the gradient where it was computed (result.grad on the call's device, in the
  // compute dtype) instead of copying it to host memory in the storage dtype.
  bool grad_on_device = false;
  std::string device = "cpu";
  // Device-resident inputs (see device_tensor.h): when defined, used instead of the
  // RawTensor of the same name (whose `storage` then still names the host dtype of
  // the gradient), without another copy.
  at::Tensor input_tensor;
  at::Tensor target_tensor;
};

struct CrossEntropyResult {
  at::Tensor loss;  // CPU, contiguous; dtype as PyTorch gives it (float32 for reduced-precision input)
  at::Tensor grad;  // CPU, contiguous, input's storage dtype (grad_on_device: on the call's
                    // device, compute dtype); undefined unless want_grad
};

// Wraps a RawTensor as an ATen tensor without copying (from_blob; no deleter: the
// caller keeps the memory alive), then converts to the compute dtype if needed.
at::Tensor view_raw(const RawTensor& raw);

// The whole computation, as PyTorch runs it: at::cross_entropy_loss, and when asked,
// the gradient through the same autograd kernels PyTorch's backward() uses.
// Throws c10::Error (and subclasses) or std::exception on failure.
CrossEntropyResult cross_entropy(const CrossEntropyArgs& args);

// Parses "cpu", "cuda", "cuda:N"; throws c10::ValueError with a message that says
// whether this LibTorch has no CUDA support or no GPU is visible.
at::Device parse_device(const std::string& spec);

// How many calls took the shortcuts of the ATen path since load (cross_entropy.cc:
// smoothing_forward without autograd, explicit_backward): for tests that check the
// shortcuts are really exercised.
struct AtenPathCounts {
  int64_t shortcut_forward = 0;
  int64_t explicit_backward = 0;
  int64_t reference = 0;  // at::cross_entropy_loss (and autograd for gradients)
  int64_t row_blocks = 0;  // of the shortcut calls, those that ran in row blocks
};
AtenPathCounts aten_path_counts();

std::string torch_version();
bool cuda_built();  // the linked LibTorch was built with CUDA
bool cuda_available();
int64_t cuda_device_count();
// Intra-op threads. set_num_threads(n) applies to the calling thread and records n for
// every thread that later runs a loss (libuv pool threads included). Without it, the JS
// main thread keeps ATen's default and each libuv pool thread uses that same default
// (worker_num_threads()): ATen's reductions split work by the thread count, so an async
// call gives the bits of the same sync call only with the same count.
void set_num_threads(int n);
// Gives the calling thread n intra-op threads, without touching ATen when it already has n.
void use_num_threads(int n);
int get_num_threads();
int worker_num_threads();
// Records ATen's default for the calling (JS main) thread; called once at load.
void init_thread_policy();
// Called at the start of work on a libuv pool thread: applies worker_num_threads().
void enter_worker_thread();

}  // namespace smoothce
