// impl: 'fused' — a CPU cross-entropy kernel that never materialises N×C intermediates
// (pure C++ + ATen's thread pool; no napi.h).
//
// Per target position: one pass over the row keeps an online (blocked) max / sum of
// exponentials, the weighted sum of logits for the smoothing term (or of target
// probabilities), and gathers the target logit; the loss follows from those scalars. When a
// gradient is asked, a second pass over the (cache-hot) row writes it straight into the
// output buffer, which may be the input itself. Rows are split over at::get_num_threads()
// threads in fixed blocks, so results do not depend on the thread count.
//
// Semantics are those of at::cross_entropy_loss (see docs/performance.md for the few cases
// that fall back to ATen instead).
#pragma once

#include "aten/cross_entropy.h"

#include <cstddef>
#include <string>

namespace smoothce {

enum class FusedIsa { Auto, Baseline, Avx2 };

// "" when the fused kernel computes `args` exactly as specified; otherwise why not (the
// caller then runs the ATen path).
std::string fused_unsupported_reason(const CrossEntropyArgs& args);

struct FusedOutputs {
  void* grad = nullptr;    // numel(input) elements of the input dtype (may equal args.input.data)
  void* loss = nullptr;    // reduction none: one element per position, input dtype
  double scalar_loss = 0;  // reduction mean/sum: the loss, rounded to the input dtype
};

// Checks a caller-provided gradient buffer: it may be exactly the input's memory (in place)
// but must not otherwise overlap the input, target, weight or gradOutput. Throws
// c10::ValueError otherwise.
void check_grad_into(const CrossEntropyArgs& args, const void* grad_into, size_t bytes);

// Checks the per-position loss buffer of reduction 'none': it must not overlap the input,
// target, weight, gradOutput or the gradient buffer `grad` (null when none). Throws
// c10::ValueError.
void check_loss_into(const CrossEntropyArgs& args, const void* loss_into, size_t bytes, const void* grad);

// Runs the kernel (fused_unsupported_reason(args) must be ""). Throws c10::IndexError for an
// out-of-range target before writing anything.
void fused_cross_entropy(const CrossEntropyArgs& args, FusedOutputs& out, FusedIsa isa = FusedIsa::Auto);

// The instruction set the kernel uses for `isa` on this CPU: "avx2" or "baseline".
const char* fused_isa_name(FusedIsa isa);
FusedIsa parse_fused_isa(const std::string& name);  // "", "auto", "avx2", "baseline"

// memcpy of `bytes` bytes on the kernel's threads (at::get_num_threads(), as the fused
// kernel uses them) when the copy is large (at least 4 MiB): the snapshot an async call
// takes of a large input blocks the JavaScript thread for less of the time.
void parallel_copy(void* dst, const void* src, size_t bytes);

// Memory-bandwidth floor for benchmarks, over `n` elements of `dtype` (float32/float64):
// one read pass (returns the sum, so it cannot be elided) and one read+write pass
// (out[i] = 0.5 * in[i]), both vectorised and split over at::get_num_threads() threads.
double floor_read_pass(const void* data, int64_t n, at::ScalarType dtype);
void floor_read_write_pass(const void* in, void* out, int64_t n, at::ScalarType dtype);
// Compute floor for benchmarks: `units` pieces of register-only multiply-add work (about
// 10^4 vector operations each), split over the same threads. Measures what the cores
// deliver when memory plays no part.
double floor_compute_pass(int64_t units);

}  // namespace smoothce
