#include "cross_entropy.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

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

  at::Tensor input = view_raw(args.input);
  at::Tensor target = view_raw(args.target);
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

void set_num_threads(int n) { at::set_num_threads(n); }
int get_num_threads() { return at::get_num_threads(); }

}  // namespace smoothce
