// Fused linear + cross-entropy (pure ATen, no napi.h): the loss of
//   cross_entropy(linear(input, linear_weight, linear_bias), target, weight, ignore_index,
//                 reduction, label_smoothing)
// and autograd's gradients for input, linear_weight and linear_bias, without ever forming the
// (N, C) logits: rows are taken in blocks whose (rows x C) logits fit the working-memory bound,
// each block's products go through at::addmm / at::mm into buffers reused across blocks and
// calls (a small pool), and the softmax, loss and logit gradient are formed in place there.
// The same code runs on CPU and on CUDA tensors (every step is a device-generic ATen call).
#pragma once

#include <ATen/ATen.h>

#include "aten/cross_entropy.h"  // RawTensor

#include <cstdint>
#include <string>

namespace smoothce {

// The default bound on the working buffers of one call (the row block's logits, plus the
// block's smoothed probability targets for probability targets): 16 MiB, or what blocks of
// kLinearCeDefaultMinRows rows need when that is more (C past 65,536 float32 classes), so that
// grad.linearWeight is not re-read for every few rows.
constexpr int64_t kLinearCeDefaultWorkingBytes = int64_t{16} << 20;
constexpr int64_t kLinearCeDefaultMinRows = 64;

struct LinearCrossEntropyArgs {
  RawTensor input;          // (N, H) or (H)
  RawTensor linear_weight;  // (C, H)
  RawTensor linear_bias;    // (C); present == false: none
  RawTensor target;         // class indices (N) / () or probabilities (N, C) / (C)
  RawTensor weight;         // class weights (C); present == false: none
  RawTensor grad_output;    // present == false: grad_output_scalar
  double grad_output_scalar = 1.0;
  int64_t reduction = at::Reduction::Mean;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  bool want_grad = false;
  int64_t working_bytes = -1;  // -1: the default (above)
  std::string device = "cpu";
  // Device-resident arguments (DeviceTensor handles): used instead of the RawTensor when defined.
  at::Tensor input_tensor, linear_weight_tensor, target_tensor;
  // Caller-owned host outputs for the gradients (gradInto): written in place when non-null;
  // each has numel of its parameter, in the host dtype of the result.
  void* grad_input_into = nullptr;
  void* grad_linear_weight_into = nullptr;
  void* grad_linear_bias_into = nullptr;
};

struct LinearCrossEntropyResult {
  at::Tensor loss;  // host; 0-d for mean/sum, target's shape (or 0-d for unbatched input) for none
  // Host tensors in the shape of their parameter (undefined when not asked for, or written into gradInto).
  at::Tensor grad_input, grad_linear_weight, grad_linear_bias;
  int64_t block_rows = 0;  // rows per block the call used
};

LinearCrossEntropyResult linear_cross_entropy(const LinearCrossEntropyArgs& args);

// Rows per block for C classes of `elem` bytes within `working_bytes` (at least 1, at most n).
int64_t linear_ce_block_rows(int64_t n, int64_t classes, int64_t elem, bool probability_target, int64_t working_bytes);

// What the buffer pool holds now (free buffers and their bytes), for tests and the bench.
struct LinearCePoolStats {
  int64_t free_buffers = 0;
  int64_t free_bytes = 0;
  int64_t allocations = 0;  // buffers allocated since load (a reused buffer is not counted)
};
LinearCePoolStats linear_ce_pool_stats();

// Which matrix-product library this LibTorch uses on the CPU (MKL, OpenBLAS, ...), from its build info.
std::string blas_info();

}  // namespace smoothce
