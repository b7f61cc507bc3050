#include "cross_entropy.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <sstream>

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif

namespace smoothce {

at::Tensor view_raw(const RawTensor& raw) {
  auto opts = at::TensorOptions().dtype(raw.storage).device(at::kCPU);
  int64_t numel = 1;
  for (int64_t d : raw.shape) {
    TORCH_CHECK_VALUE(d >= 0, "negative dimension ", d);
    numel *= d;
  }
  at::Tensor t = (numel == 0 || raw.data == nullptr) ? at::empty(raw.shape, opts)
                                                      : at::from_blob(raw.data, raw.shape, opts);
  TORCH_CHECK_VALUE(numel == 0 || raw.data != nullptr, "tensor data is missing");
  if (raw.compute != raw.storage) t = t.to(raw.compute);
  return t;
}

at::Device parse_device(const std::string& spec) {
  if (spec.empty() || spec == "cpu") return at::Device(at::kCPU);
  int64_t index = -1;
  if (spec == "cuda") {
    index = 0;
  } else if (spec.rfind("cuda:", 0) == 0) {
    const std::string digits = spec.substr(5);
    TORCH_CHECK_VALUE(!digits.empty() && digits.size() <= 4 &&
                          digits.find_first_not_of("0123456789") == std::string::npos,
                      "device must be 'cpu', 'cuda' or 'cuda:N', got '", spec, "'");
    index = std::stoll(digits);
  } else {
    TORCH_CHECK_VALUE(false, "device must be 'cpu', 'cuda' or 'cuda:N', got '", spec, "'");
  }
  TORCH_CHECK_VALUE(cuda_built(), "device '", spec, "' was requested, but this LibTorch build (",
                    torch_version(), ") has no CUDA support; link a CUDA LibTorch (LIBTORCH or Torch_DIR) to use it");
  TORCH_CHECK_VALUE(cuda_device_count() > 0, "device '", spec,
                    "' was requested, but no CUDA GPU is visible (LibTorch has CUDA support; check the driver "
                    "and CUDA_VISIBLE_DEVICES)");
  const int64_t count = cuda_device_count();
  TORCH_CHECK_VALUE(index < count, "device '", spec, "' was requested, but only ", count,
                    " CUDA device(s) are visible");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

namespace {

at::Tensor to_output(const at::Tensor& t, at::ScalarType dtype) {
  at::Tensor out = t;
  if (!out.device().is_cpu()) out = out.cpu();
  if (out.scalar_type() != dtype) out = out.to(dtype);
  return out.contiguous();
}

at::ScalarType host_dtype(at::ScalarType compute) {
  // Reduced-precision results go back to JavaScript as float32 (exact widening).
  return (compute == at::kBFloat16 || compute == at::kHalf) ? at::kFloat : compute;
}

}  // namespace

CrossEntropyResult cross_entropy(const CrossEntropyArgs& args) {
  const at::Device device = parse_device(args.device);

  at::Tensor input = args.input_tensor.defined() ? args.input_tensor : view_raw(args.input);
  at::Tensor target = args.target_tensor.defined() ? args.target_tensor : view_raw(args.target);
  at::Tensor weight;
  if (args.weight.present) {
    weight = view_raw(args.weight);
    // The class-index path requires weight.dtype == input.dtype; the probability path
    // promotes (PyTorch's rules), so only cast for class-index targets.
    const bool prob_target = input.sizes() == target.sizes();
    if (!prob_target && weight.scalar_type() != input.scalar_type()) weight = weight.to(input.scalar_type());
  }
  if (!device.is_cpu()) {
    input = input.to(device);
    target = target.to(device);
    if (weight.defined()) weight = weight.to(device);
  }

  CrossEntropyResult result;
  if (!args.want_grad) {
    c10::InferenceMode guard;
    at::Tensor loss = at::cross_entropy_loss(input, target, weight, args.reduction, args.ignore_index,
                                             args.label_smoothing);
    result.loss = to_output(loss, host_dtype(loss.scalar_type()));
    return result;
  }

  at::AutoGradMode enable_grad(true);
  at::Tensor leaf = input.detach().requires_grad_(true);
  at::Tensor loss =
      at::cross_entropy_loss(leaf, target, weight, args.reduction, args.ignore_index, args.label_smoothing);
  at::Tensor upstream;
  if (args.grad_output.present) {
    upstream = view_raw(args.grad_output).to(loss.options());
    TORCH_CHECK_VALUE(upstream.sizes() == loss.sizes(), "gradOutput has shape ", upstream.sizes(),
                      " but the loss has shape ", loss.sizes());
  } else {
    upstream = at::full_like(loss, args.grad_output_scalar);
  }
  loss.backward(upstream);
  at::Tensor grad = leaf.grad();
  if (!grad.defined()) grad = at::zeros_like(leaf);
  result.loss = to_output(loss.detach(), host_dtype(loss.scalar_type()));
  result.grad = to_output(grad, args.input.storage);
  return result;
}

std::string torch_version() {
#ifdef TORCH_VERSION_MAJOR
  std::ostringstream s;
  s << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "." << TORCH_VERSION_PATCH;
  return s.str();
#else
  return "unknown";
#endif
}

bool cuda_built() {
#ifdef SMOOTHCE_TORCH_HAS_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() { return at::hasCUDA() && cuda_device_count() > 0; }

int64_t cuda_device_count() {
  if (!at::hasCUDA()) return 0;
  return static_cast<int64_t>(at::detail::getCUDAHooks().getNumGPUs());
}

namespace {
std::atomic<int> g_requested_threads{0};  // set_num_threads(n); 0: not set
std::atomic<int> g_main_default{0};       // ATen's default on the JS main thread
}  // namespace

void init_thread_policy() {
  // Initialises ATen's per-thread setting on this (main) thread now, before any pool
  // thread changes the process-wide value it would otherwise be initialised from.
  int expected = 0;
  g_main_default.compare_exchange_strong(expected, std::max(1, at::get_num_threads()));
}

void set_num_threads(int n) {
  g_requested_threads.store(n);
  at::set_num_threads(n);
}

int get_num_threads() { return at::get_num_threads(); }

int worker_num_threads() {
  const int requested = g_requested_threads.load();
  if (requested > 0) return requested;
  int cores = g_main_default.load();
  if (cores <= 0) cores = 1;
  int pool = 4;  // libuv's default pool size
  if (const char* env = std::getenv("UV_THREADPOOL_SIZE")) {
    const int v = std::atoi(env);
    if (v > 0) pool = std::min(v, 1024);
  }
  return std::max(1, cores / std::min(pool, cores));
}

void enter_worker_thread() {
  const int want = worker_num_threads();
  if (at::get_num_threads() != want) at::set_num_threads(want);
}

}  // namespace smoothce
