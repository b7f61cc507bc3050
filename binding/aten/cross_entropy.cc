#include "aten/cross_entropy.h"

#include "memory/allocator.h"

#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <sstream>
#include <tuple>

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
  if (!out.device().is_cpu()) {
    // A large device result is copied and converted once, straight into huge-page host
    // memory: faulting in fresh 4 KiB pages costs more than the copy from the GPU itself.
    if (static_cast<size_t>(t.numel()) * c10::elementSize(dtype) >= kHugeThreshold) {
      at::Tensor host = empty_huge(t.sizes(), dtype);
      host.copy_(t);
      return host;
    }
    out = out.cpu();
  }
  if (out.scalar_type() != dtype) out = out.to(dtype);
  return out.contiguous();
}

// The gradient as the caller asked for it: copied to host memory in the input's storage
// dtype, or left on the device in the compute dtype (args.grad_on_device).
at::Tensor grad_output_of(const at::Tensor& grad, const CrossEntropyArgs& args) {
  return args.grad_on_device ? grad.contiguous() : to_output(grad, args.input.storage);
}

at::ScalarType host_dtype(at::ScalarType compute) {
  // Reduced-precision results go back to JavaScript as float32 (exact widening).
  return (compute == at::kBFloat16 || compute == at::kHalf) ? at::kFloat : compute;
}

// The label-smoothing forward of at::cross_entropy_loss with fewer ATen calls, bit for bit.
//
// For class-index targets with 0 < ε <= 1, LibTorch 1.13 computes (observed op for op
// against the oracle, 3,000 random calls, no difference)
//   logp = log_softmax(x); nll = nll_loss_nd(logp, y, w, reduction, ignore_index)
//   smooth = -(logp [* w]).sum(class_dim); smooth.masked_fill_(y == ignore_index, 0)
//   ret = mean: smooth.masked_select(y != ignore_index).mean() | sum: smooth.sum() | none: smooth
// (2.x: mean is smooth.sum() / (y != ignore_index).sum(); see kMeanSumsAllPositions)
//   loss = (1 - ε) * nll + ret * (ε / C)
// as about a dozen dispatched ops, each ~2-4 µs on small inputs. Here the reductions
// (log_softmax, nll_loss_nd, both sums) stay ATen's own kernels, so their summation order
// is unchanged, and the element-wise tail (negation, mask, count, the two scalar products
// and the sum, each rounded to the input dtype exactly as ATen's float/double kernels
// round them) runs as plain C++ on the ATen results. Only float32/float64 CPU inputs with
// int64 targets take this path (bfloat16 kernels round the scalars differently; uint8
// targets compare with ignore_index in uint8), and not the weighted mean (its denominator
// is a gather + sum whose order would have to be copied); everything else calls
// at::cross_entropy_loss. Checked against it bit for bit by test/aten-fast.test.ts.
std::atomic<int64_t> g_shortcut_forward{0}, g_explicit_backward{0}, g_reference{0}, g_row_blocks{0};

// SMOOTHCE_ATEN_REFERENCE=1 turns both shortcuts off (at::cross_entropy_loss and autograd
// for everything): test/aten-fast.test.ts compares the two bit for bit in one process.
[[maybe_unused]] bool reference_only() {
  const char* e = std::getenv("SMOOTHCE_ATEN_REFERENCE");
  return e != nullptr && e[0] == '1';
}

// Both shortcuts, for LibTorch 1.x and 2.x (checked bit for bit against
// at::cross_entropy_loss + autograd by test/aten-fast.test.ts on 1.13 and, in
// scripts/torch2.sh's chroot, on 2.6); SMOOTHCE_ATEN_REFERENCE=1 turns them off.
bool shortcuts_enabled() {
#if !defined(TORCH_VERSION_MAJOR) || (TORCH_VERSION_MAJOR != 1 && TORCH_VERSION_MAJOR != 2)
  return false;
#else
  return !reference_only();
#endif
}

// How the unweighted 'mean' of the smoothing term is formed:
//   1.x: smooth.masked_select(~ignore_mask).mean() (the sum of the kept positions only);
//   2.x: smooth.sum() / (~ignore_mask).sum() (the sum over every position, ignored ones
//        being +0 after masked_fill_; the cascade sum then groups differently).
// The backward is the same: g / kept on kept positions, +0 on ignored ones.
// How autograd scales the upstream gradient by the scalars (1 − ε) and ε / C: see
// Upstream below.
constexpr bool kScalarMulBackwardInDtype =
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
    true;
#else
    false;
#endif

constexpr bool kMeanSumsAllPositions =
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
    true;
#else
    false;
#endif

bool smoothing_fast_path(const at::Tensor& x, const at::Tensor& y, const at::Tensor& w, int64_t reduction,
                         double eps) {
  if (!shortcuts_enabled()) return false;
  return x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) && eps > 0 &&
         eps <= 1 && reduction >= 0 && reduction <= 2 && y.scalar_type() == at::kLong && x.dim() >= 1 &&
         x.sizes() != y.sizes() && x.numel() > 0 && y.is_contiguous() && x.is_contiguous() &&
         !(w.defined() && (reduction == at::Reduction::Mean || w.scalar_type() != x.scalar_type()));
}

// The smoothing term and the combined loss from log_softmax's output and nll_loss's (a
// contiguous nll); *valid gets the number of non-ignored positions.
// `rowsum`, when defined, is sum(logp, class_dim) already formed (row_blocks below; this
// function then owns it and overwrites it).
template <class T>
at::Tensor smoothing_loss(const at::Tensor& x, const at::Tensor& logp, const at::Tensor& nll, const at::Tensor& y,
                          const at::Tensor& w, int64_t reduction, int64_t ignore_index, double eps, int64_t* valid_out,
                          const at::Tensor& rowsum = at::Tensor()) {
  const int64_t class_dim = x.dim() == 1 ? 0 : 1;
  at::Tensor smooth;
  if (rowsum.defined()) {
    smooth = rowsum;
  } else if (w.defined()) {
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[static_cast<size_t>(class_dim)] = w.size(0);
    smooth = at::sum(logp * w.view(shape), class_dim);
  } else {
    smooth = at::sum(logp, class_dim);
  }
  smooth = smooth.contiguous();
  TORCH_CHECK(smooth.numel() == y.numel(), "smoothing term and target differ in size");
  T* s = smooth.data_ptr<T>();
  const int64_t* t = y.data_ptr<int64_t>();
  const int64_t positions = smooth.numel();
  int64_t valid = 0;
  for (int64_t p = 0; p < positions; ++p) {
    if (t[p] == ignore_index) {
      s[p] = T(0);  // -sum, then masked_fill_(…, 0.0): +0
    } else {
      s[p] = -s[p];
      ++valid;
    }
  }
  *valid_out = valid;
  // x86-64 baseline code has no FMA: each product and the sum round separately, as the
  // separate ATen ops do.
  const T c1 = static_cast<T>(1.0 - eps);
  const T c2 = static_cast<T>(eps / static_cast<double>(x.size(class_dim)));
  if (reduction == at::Reduction::None) {
    at::Tensor out = at::empty_like(smooth);
    T* o = out.data_ptr<T>();
    const T* n = nll.data_ptr<T>();
    for (int64_t p = 0; p < positions; ++p) {
      const T a = n[p] * c1;
      const T b = s[p] * c2;
      o[p] = a + b;
    }
    return out;
  }
  T ret;
  if (reduction == at::Reduction::Mean && kMeanSumsAllPositions) {
    // 2.x: smooth_loss.sum() / true_mask.sum(), a float 0-d tensor over an int64 one.
    ret = at::sum(smooth).item<T>() / static_cast<T>(valid);
  } else if (reduction == at::Reduction::Mean) {
    // 1.13 sums only the kept positions (masked_select(~mask), then mean): the cascade sum
    // of the shorter tensor groups differently from a sum with zeros in it.
    at::Tensor kept = at::empty({valid}, smooth.options());
    T* k = kept.data_ptr<T>();
    for (int64_t p = 0, j = 0; p < positions; ++p)
      if (t[p] != ignore_index) k[j++] = s[p];
    ret = at::sum(kept).item<T>() / static_cast<T>(valid);
  } else {
    ret = at::sum(smooth).item<T>();
  }
  const T a = nll.item<T>() * c1;
  const T b = ret * c2;
  return at::scalar_tensor(a + b, x.options());
}

// Row blocks. log_softmax, its row sums, the target gather and log_softmax's backward are
// all row by row, so for a 2-D (N, C) input they can run one block of rows at a time, each
// block's log-probabilities (and gradient of them) living in a buffer that stays in the
// core's cache, instead of as N x C tensors that go out to memory and come back for the
// next op: a call allocates no N x C temporary (only the gradient it returns), faults in
// nothing on its first call beyond that, and reads and writes memory once. Each block
// calls ATen's own kernels (log_softmax, sum, _log_softmax_backward_data) on its rows, and
// these compute every row the same way whatever rows surround it and however many threads
// share the work (each row is reduced by one thread in one order), so the results are the
// bits of the whole-tensor calls. The sums over rows (nll_loss's and the smoothing term's)
// stay whole-tensor ATen calls: nll_loss runs on an (N, K) tensor holding each row's
// gathered log-probability in column K - 1 (K = 2 when ignore_index is 0), whose kernel
// visits the rows in the same order with the same cascade as on (N, C).
// test/aten-fast.test.ts compares all of it with at::cross_entropy_loss + autograd bit for
// bit. SMOOTHCE_ATEN_BLOCKED=0 turns row blocks off (the whole-tensor shortcuts above).
constexpr int64_t kBlockedMinNumel = int64_t{1} << 16;  // below: one block anyway

bool blocked_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("SMOOTHCE_ATEN_BLOCKED");
    return !(e != nullptr && e[0] == '0');
  }();
  return on;
}

int64_t block_bytes() {
  static const int64_t b = [] {
    const char* e = std::getenv("SMOOTHCE_ATEN_BLOCK_KB");
    const long kb = e ? std::strtol(e, nullptr, 10) : 0;
    return kb > 0 ? int64_t{kb} << 10 : int64_t{256} << 10;
  }();
  return b;
}

// Whether (x, y, w) can take row blocks: a 2-D contiguous float32/float64 CPU input, int64
// targets all in [0, C) or equal to ignore_index (anything else goes the whole-tensor way,
// which raises ATen's own error), no class weights.
bool blocked_eligible(const at::Tensor& x, const at::Tensor& y, const at::Tensor& w, int64_t ignore_index) {
  if (!blocked_enabled() || !shortcuts_enabled() || w.defined()) return false;
  if (!x.device().is_cpu() || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble)) return false;
  if (x.dim() != 2 || !x.is_contiguous() || x.numel() < kBlockedMinNumel) return false;
  if (y.scalar_type() != at::kLong || y.dim() != 1 || !y.is_contiguous() || y.size(0) != x.size(0)) return false;
  const int64_t C = x.size(1), N = x.size(0);
  const int64_t* t = y.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    if (t[i] != ignore_index && (t[i] < 0 || t[i] >= C)) return false;
  g_row_blocks.fetch_add(1, std::memory_order_relaxed);
  return true;
}

template <class T>
struct RowBlocks {
  at::Tensor rowsum;    // (N): sum of log_softmax(x) over each row
  at::Tensor gathered;  // (N, K): log_softmax(x)[i, y_i] in column K - 1
  at::Tensor y_k;       // (N): K - 1, or ignore_index where y_i is
  int64_t valid = 0;    // rows whose target is not ignore_index
};

// The gathered column and its targets, before any block runs.
template <class T>
RowBlocks<T> row_blocks_prepare(const at::Tensor& x, const at::Tensor& y, int64_t ignore_index) {
  RowBlocks<T> rb;
  const int64_t N = x.size(0);
  const int64_t K = ignore_index == 0 ? 2 : 1;
  rb.rowsum = at::empty({N}, x.options());
  rb.gathered = at::zeros({N, K}, x.options());
  rb.y_k = at::empty({N}, y.options());
  const int64_t* t = y.data_ptr<int64_t>();
  int64_t* yk = rb.y_k.template data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i) {
    const bool ignored = t[i] == ignore_index;
    yk[i] = ignored ? ignore_index : K - 1;
    rb.valid += ignored ? 0 : 1;
  }
  return rb;
}

// One pass over the rows, a block at a time: rowsum, gathered and, when `grad` is defined,
// the gradient: per row, G = nll_loss_backward's row (+0 everywhere but g_target[i] at the
// target) plus h[i] everywhere when `h` is given (the smoothing term's backward, added as
// explicit_backward adds it), then grad = _log_softmax_backward_data(G, logp).
template <class T>
void row_blocks_run(const at::Tensor& x, const at::Tensor& y, int64_t ignore_index, RowBlocks<T>& rb,
                    const T* g_target, const T* h, const at::Tensor& grad) {
  const int64_t N = x.size(0), C = x.size(1), K = rb.gathered.size(1);
  // At least two rows a block: ATen reduces a one-row tensor with more than one thread by
  // splitting the row (another summation order); with two or more rows it splits only
  // between rows. A last block of one row joins the block before it. With more than one
  // thread, a block has at least two grains (ATen's ops run a block on one thread below
  // one grain, 32,768 elements).
  int64_t rows = std::max<int64_t>(2, block_bytes() / (C * static_cast<int64_t>(sizeof(T))));
  if (at::get_num_threads() > 1) rows = std::max<int64_t>(rows, (2 * at::internal::GRAIN_SIZE + C - 1) / C);
  rows = std::min(rows, N);
  const T* xd = x.data_ptr<T>();
  const int64_t* t = y.data_ptr<int64_t>();
  T* rs = rb.rowsum.template data_ptr<T>();
  T* ga = rb.gathered.template data_ptr<T>();
  T* gd = grad.defined() ? grad.data_ptr<T>() : nullptr;
  const auto opts = x.options();
  const at::ScalarType dtype = x.scalar_type();
  const std::vector<int64_t> dim1{1};
  // The blocks run one after another on this thread; ATen's ops share each block's rows
  // between its threads as they would the whole tensor's.
  {
    const int64_t cap = std::min(rows + 1, N);
    at::Tensor lp = at::empty({cap, C}, opts);
    at::Tensor G = gd ? at::empty({cap, C}, opts) : at::Tensor();
    for (int64_t r0 = 0; r0 < N;) {
      int64_t r = std::min(rows, N - r0);
      if (N - r0 - r == 1) ++r;  // no one-row block
      T* L = lp.data_ptr<T>();
      at::Tensor lpb = at::from_blob(L, {r, C}, opts);
      at::_log_softmax_out(lpb, at::from_blob(const_cast<T*>(xd + r0 * C), {r, C}, opts), 1, false);
      at::Tensor rsb = at::from_blob(rs + r0, {r}, opts);
      at::sum_out(rsb, lpb, at::IntArrayRef(dim1));
      for (int64_t i = 0; i < r; ++i) {
        const int64_t ti = t[r0 + i];
        if (ti != ignore_index) ga[(r0 + i) * K + K - 1] = L[i * C + ti];
      }
      if (gd == nullptr) {
        r0 += r;
        continue;
      }
      T* Gd = G.data_ptr<T>();
      for (int64_t i = 0; i < r; ++i) {
        T* row = Gd + i * C;
        const int64_t ti = t[r0 + i];
        const T zero = T(0);
        if (h != nullptr) {
          const T hv = h[r0 + i];
          for (int64_t c = 0; c < C; ++c) row[c] = zero + hv;
          if (ti != ignore_index) row[ti] = g_target[r0 + i] + hv;
        } else {
          for (int64_t c = 0; c < C; ++c) row[c] = zero;
          if (ti != ignore_index) row[ti] = g_target[r0 + i];
        }
      }
      at::Tensor gb = at::from_blob(gd + r0 * C, {r, C}, opts);
      at::_log_softmax_backward_data_out(gb, at::from_blob(Gd, {r, C}, opts), lpb, 1, dtype);
      r0 += r;
    }
  }
}

template <class T>
at::Tensor blocked_forward(const at::Tensor& x, const at::Tensor& y, int64_t reduction, int64_t ignore_index,
                           double eps) {
  RowBlocks<T> rb = row_blocks_prepare<T>(x, y, ignore_index);
  row_blocks_run<T>(x, y, ignore_index, rb, nullptr, nullptr, at::Tensor());
  const at::Tensor nll = at::nll_loss_nd(rb.gathered, rb.y_k, at::Tensor(), reduction, ignore_index).contiguous();
  int64_t valid = 0;
  return smoothing_loss<T>(x, at::Tensor(), nll, y, at::Tensor(), reduction, ignore_index, eps, &valid, rb.rowsum);
}

template <class T>
at::Tensor smoothing_forward(const at::Tensor& x, const at::Tensor& y, const at::Tensor& w, int64_t reduction,
                             int64_t ignore_index, double eps) {
  if (blocked_eligible(x, y, w, ignore_index)) return blocked_forward<T>(x, y, reduction, ignore_index, eps);
  const int64_t class_dim = x.dim() == 1 ? 0 : 1;
  const at::Tensor logp = at::log_softmax(x, class_dim, x.scalar_type());
  // Raises what at::cross_entropy_loss raises for bad targets, weights and shapes.
  const at::Tensor nll = at::nll_loss_nd(logp, y, w, reduction, ignore_index).contiguous();
  int64_t valid = 0;
  return smoothing_loss<T>(x, logp, nll, y, w, reduction, ignore_index, eps, &valid);
}

at::Tensor cross_entropy_forward(const at::Tensor& input, const at::Tensor& target, const at::Tensor& weight,
                                 int64_t reduction, int64_t ignore_index, double eps) {
  if (smoothing_fast_path(input, target, weight, reduction, eps)) {
    g_shortcut_forward.fetch_add(1, std::memory_order_relaxed);
    return input.scalar_type() == at::kDouble
               ? smoothing_forward<double>(input, target, weight, reduction, ignore_index, eps)
               : smoothing_forward<float>(input, target, weight, reduction, ignore_index, eps);
  }
  // Class-index targets without smoothing: at::cross_entropy_loss is, in 1.13 and 2.x alike,
  // nll_loss_nd(log_softmax(x, class_dim, x.dtype), ...); called directly, the composite op's
  // own dispatch and checks are saved (a 32x10 forward, LibTorch 2.6: 14.3-14.7 µs a call
  // against 14.7-17.1 before; 1.13: 9.1-10.1 against 9.9-10.1).
  if (shortcuts_enabled() && input.device().is_cpu() && !(eps > 0) && input.dim() >= 1 &&
      input.sizes() != target.sizes()) {
    g_shortcut_forward.fetch_add(1, std::memory_order_relaxed);
    const int64_t class_dim = input.dim() == 1 ? 0 : 1;
    return at::nll_loss_nd(at::log_softmax(input, class_dim, input.scalar_type()), target, weight, reduction,
                           ignore_index);
  }
  g_reference.fetch_add(1, std::memory_order_relaxed);
  return at::cross_entropy_loss(input, target, weight, reduction, ignore_index, eps);
}

// Loss and gradient without autograd, for 1-D/2-D float32/float64 CPU inputs with int64
// targets (LibTorch 1.x): the same ATen kernels autograd's backward runs
// (nll_loss_backward, _log_softmax_backward_data) and, for the smoothing term, the
// element-wise steps of its backward graph in the same order and rounding:
//   g_nll = g·(1−ε); g_ret = g·(ε/C) (see `scaled` for their rounding)
//   mean: kept positions g_ret / kept (MeanBackward, then MaskedSelectBackward's scatter
//         into zeros); sum: g_ret everywhere; none: g_ret per position
//   masked_fill_ backward (ignored → +0), neg backward (→ −value), sum(class_dim)
//   backward (expand over classes, × w when weighted), added to nll_loss_backward's
//   gradient, then log_softmax's backward. Without smoothing (ε <= 0 or NaN): g_nll = g and
//   no smoothing term. The weighted mean with smoothing is left to autograd (its forward
//   is not on smoothing_fast_path). Returns false when the call does not qualify.
bool explicit_backward_eligible(const at::Tensor& x, const at::Tensor& y, const at::Tensor& w, int64_t reduction,
                                double eps) {
  if (!shortcuts_enabled()) return false;
  if (!x.device().is_cpu() || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble)) return false;
  if (y.scalar_type() != at::kLong || !x.is_contiguous() || !y.is_contiguous() || x.numel() == 0) return false;
  if (reduction < 0 || reduction > 2 || (x.dim() != 1 && x.dim() != 2) || y.dim() != x.dim() - 1) return false;
  if (x.dim() == 2 && y.size(0) != x.size(0)) return false;
  const int64_t C = x.size(x.dim() - 1);
  if (w.defined() && (w.dim() != 1 || w.size(0) != C || w.scalar_type() != x.scalar_type() || !w.is_contiguous())) {
    return false;
  }
  const bool smooth = eps > 0;
  if (smooth && (eps > 1 || (w.defined() && reduction == at::Reduction::Mean))) return false;
  return true;
}

// The upstream gradient of the loss (checked as the autograd path checks it: its shape must
// be the loss's), and d loss / d nll from it. How autograd scales the upstream gradient by the
// scalars (1 − ε) and ε / C:
// 1.x: MulBackward saved the scalar as a double 0-d tensor, no longer a "wrapped number":
// against a 0-d gradient (mean, sum, 1-D none) grad · s is formed in double and rounded
// once; against a gradient with dimensions (none) type promotion keeps the input dtype.
// 2.x: the scalar stays a Scalar (mul.Scalar's backward), so grad · s is always formed in
// the input dtype, with s rounded to it first (23 of 3,000 aten-fast calls differ otherwise).
template <class T>
struct Upstream {
  at::Tensor grad;   // d loss / d loss, contiguous, in T
  at::Tensor g_nll;  // d loss / d nll: grad · (1 − ε) when smoothing, else grad
  bool zero_dim = false;
  T scaled(T v, double s) const {
    return zero_dim ? static_cast<T>(static_cast<double>(v) * s) : static_cast<T>(v * static_cast<T>(s));
  }
};

template <class T>
Upstream<T> upstream_of(const CrossEntropyArgs& args, at::IntArrayRef loss_shape, const at::TensorOptions& opts,
                        bool smooth, double eps) {
  Upstream<T> u;
  if (args.grad_output.present) {
    u.grad = view_raw(args.grad_output).to(opts);
    TORCH_CHECK_VALUE(u.grad.sizes() == loss_shape, "gradOutput has shape ", u.grad.sizes(), " but the loss has shape ",
                      loss_shape);
    u.grad = u.grad.contiguous();
  } else {
    u.grad = at::full(loss_shape, args.grad_output_scalar, opts);
  }
  u.zero_dim = u.grad.dim() == 0 && !kScalarMulBackwardInDtype;
  u.g_nll = u.grad;
  if (smooth) {
    const T* g = u.grad.template data_ptr<T>();
    u.g_nll = at::empty_like(u.grad);
    T* gn = u.g_nll.template data_ptr<T>();
    for (int64_t i = 0, n = u.grad.numel(); i < n; ++i) gn[i] = u.scaled(g[i], 1.0 - eps);
  }
  return u;
}

// d loss / d (the smoothing term's row sum of log-probabilities), per position: the backward of
// the element-wise steps after the sum (mean: g·ε/C / kept on kept positions; sum: g·ε/C; none:
// g_p·ε/C; masked_fill_'s backward: +0 on ignored positions; then neg's: the negation).
template <class T>
std::vector<T> smoothing_grad(const Upstream<T>& up, const int64_t* t, int64_t positions, int64_t ignore_index,
                              int64_t reduction, int64_t valid, double eps, int64_t C) {
  const T* g = up.grad.template data_ptr<T>();
  const bool per_position = reduction == at::Reduction::None;
  const double eps_c = eps / static_cast<double>(C);
  const T g_ret_scalar = per_position ? T(0) : up.scaled(g[0], eps_c);
  std::vector<T> h(static_cast<size_t>(positions));
  for (int64_t p = 0; p < positions; ++p) {
    T v;
    if (t[p] == ignore_index) {
      v = T(0);
    } else if (per_position) {
      v = up.scaled(g[p], eps_c);
    } else if (reduction == at::Reduction::Mean) {
      v = g_ret_scalar / static_cast<T>(valid);
    } else {
      v = g_ret_scalar;
    }
    h[static_cast<size_t>(p)] = -v;  // ignored positions: −0
  }
  return h;
}

// explicit_backward in row blocks (see RowBlocks): every per-row value below is what
// explicit_backward forms, in the same order and rounding; nll_loss_backward's target
// entries come from its own kernel run on the (N, K) gathered tensor, before the blocks.
template <class T>
CrossEntropyResult blocked_backward(const CrossEntropyArgs& args, const at::Tensor& x, const at::Tensor& y) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t reduction = args.reduction, ignore_index = args.ignore_index;
  const double eps = args.label_smoothing;
  const bool smooth = eps > 0;
  const bool per_position = reduction == at::Reduction::None;
  RowBlocks<T> rb = row_blocks_prepare<T>(x, y, ignore_index);
  const int64_t K = rb.gathered.size(1);

  const std::vector<int64_t> loss_shape = per_position ? std::vector<int64_t>{N} : std::vector<int64_t>{};
  const Upstream<T> up = upstream_of<T>(args, loss_shape, x.options(), smooth, eps);
  const at::Tensor& g_nll = up.g_nll;
  // nll_loss_forward's total weight without class weights: the kept rows, in T.
  const at::Tensor total_weight = at::scalar_tensor(static_cast<T>(rb.valid), x.options());
  const at::Tensor G1 =
      at::nll_loss_backward(g_nll, rb.gathered, rb.y_k, at::Tensor(), reduction, ignore_index, total_weight).contiguous();
  std::vector<T> g_target(static_cast<size_t>(N));
  const T* g1 = G1.data_ptr<T>();
  for (int64_t i = 0; i < N; ++i) g_target[static_cast<size_t>(i)] = g1[i * K + K - 1];

  std::vector<T> h;
  if (smooth) h = smoothing_grad<T>(up, y.data_ptr<int64_t>(), N, ignore_index, reduction, rb.valid, eps, C);
  CrossEntropyResult result;
  result.grad = at::empty({N, C}, x.options());
  row_blocks_run<T>(x, y, ignore_index, rb, g_target.data(), smooth ? h.data() : nullptr, result.grad);
  at::Tensor nll = std::get<0>(at::nll_loss_forward(rb.gathered, rb.y_k, at::Tensor(), reduction, ignore_index)).contiguous();
  int64_t valid = 0;
  result.loss = smooth ? smoothing_loss<T>(x, at::Tensor(), nll, y, at::Tensor(), reduction, ignore_index, eps, &valid,
                                           rb.rowsum)
                       : nll;
  return result;
}

template <class T>
CrossEntropyResult explicit_backward(const CrossEntropyArgs& args, const at::Tensor& x, const at::Tensor& y,
                                     const at::Tensor& w) {
  if (blocked_eligible(x, y, w, args.ignore_index)) return blocked_backward<T>(args, x, y);
  const int64_t class_dim = x.dim() == 1 ? 0 : 1;
  const int64_t C = x.size(class_dim);
  const int64_t reduction = args.reduction, ignore_index = args.ignore_index;
  const double eps = args.label_smoothing;
  const bool smooth = eps > 0;
  const at::Tensor logp = at::log_softmax(x, class_dim, x.scalar_type());
  at::Tensor nll, total_weight;
  std::tie(nll, total_weight) = at::nll_loss_forward(logp, y, w, reduction, ignore_index);
  nll = nll.contiguous();
  const int64_t positions = y.numel();
  const int64_t* t = y.data_ptr<int64_t>();

  // Forward (as smoothing_forward, sharing logp and nll with the backward).
  int64_t valid = 0;
  const at::Tensor loss =
      smooth ? smoothing_loss<T>(x, logp, nll, y, w, reduction, ignore_index, eps, &valid) : nll;

  // The upstream gradient and d loss / d nll (upstream_of).
  const Upstream<T> up = upstream_of<T>(args, loss.sizes(), loss.options(), smooth, eps);
  const at::Tensor& g_nll = up.g_nll;
  at::Tensor G = at::nll_loss_backward(g_nll, logp, y, w, reduction, ignore_index, total_weight).contiguous();

  if (smooth) {
    T* Gd = G.data_ptr<T>();
    const T* wd = w.defined() ? w.data_ptr<T>() : nullptr;
    const std::vector<T> hs = smoothing_grad<T>(up, t, positions, ignore_index, reduction, valid, eps, C);
    for (int64_t p = 0; p < positions; ++p) {
      const T h = hs[static_cast<size_t>(p)];
      T* row = Gd + p * C;  // 1-D input: one row; 2-D: contiguous rows
      if (wd) {
        for (int64_t c = 0; c < C; ++c) {
          const T hw = h * wd[c];
          row[c] = row[c] + hw;
        }
      } else {
        for (int64_t c = 0; c < C; ++c) row[c] = row[c] + h;
      }
    }
  }
  CrossEntropyResult result;
  result.grad = at::_log_softmax_backward_data(G, logp, class_dim, x.scalar_type());
  result.loss = loss;
  return result;
}

}  // namespace

}  // namespace smoothce

// OpenMP's per-thread team size, when the linked LibTorch's intra-op backend is OpenMP (weak:
// null otherwise). Cheap, unlike at::set_num_threads, which also rebuilds a thread pool.
extern "C" {
__attribute__((weak)) int omp_get_max_threads(void);
__attribute__((weak)) void omp_set_num_threads(int);
}

namespace smoothce {
namespace {

// A call on fewer logits than ATen's grain size (32,768) runs its ATen ops on the calling
// thread alone. ATen does not split such small reductions between threads anyway (the same
// bits with 1 or n threads), but with n > 1 it still forms an OpenMP team for parallel_for
// loops whose grain it divides by the row length (log_softmax's rows, say): on a busy
// machine each team waits for a second core and a 32x10 call took 16 ms instead of 0.2 ms
// (LibTorch 2.6, whose default here is 2 threads; 1.13 defaults to 1). The thread count is
// restored afterwards.
class SmallCallGuard {
 public:
  explicit SmallCallGuard(const at::Tensor& input) {
    if (omp_get_max_threads == nullptr || omp_set_num_threads == nullptr) return;
    if (!input.device().is_cpu() || input.numel() >= at::internal::GRAIN_SIZE) return;
    if (at::get_num_threads() <= 1) return;  // also ATen's lazy per-thread initialisation
    saved_ = omp_get_max_threads();
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~SmallCallGuard() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  SmallCallGuard(const SmallCallGuard&) = delete;
  SmallCallGuard& operator=(const SmallCallGuard&) = delete;

 private:
  int saved_ = 0;
};

}  // namespace

CrossEntropyResult cross_entropy(const CrossEntropyArgs& args) {
  const at::Device device = parse_device(args.device);

  at::Tensor input = args.input_tensor.defined() ? args.input_tensor : view_raw(args.input);
  const SmallCallGuard small_call(input);
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
    at::Tensor loss = cross_entropy_forward(input, target, weight, args.reduction, args.ignore_index,
                                            args.label_smoothing);
    result.loss = to_output(loss, host_dtype(loss.scalar_type()));
    return result;
  }

  if (explicit_backward_eligible(input, target, weight, args.reduction, args.label_smoothing)) {
    c10::InferenceMode guard;
    g_explicit_backward.fetch_add(1, std::memory_order_relaxed);
    CrossEntropyResult r = input.scalar_type() == at::kDouble ? explicit_backward<double>(args, input, target, weight)
                                                              : explicit_backward<float>(args, input, target, weight);
    result.loss = to_output(r.loss, host_dtype(r.loss.scalar_type()));
    result.grad = grad_output_of(r.grad, args);
    return result;
  }

  g_reference.fetch_add(1, std::memory_order_relaxed);
  c10::AutoGradMode enable_grad(true);
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
  result.grad = grad_output_of(grad, args);
  return result;
}

AtenPathCounts aten_path_counts() {
  AtenPathCounts c;
  c.shortcut_forward = g_shortcut_forward.load();
  c.row_blocks = g_row_blocks.load();
  c.explicit_backward = g_explicit_backward.load();
  c.reference = g_reference.load();
  return c;
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

// torch::cuda::device_count() rather than the CUDA hooks' getNumGPUs(): the C++ API's
// call is the same in LibTorch 1.x and 2.x.
int64_t cuda_device_count() {
  if (!at::hasCUDA()) return 0;
  return static_cast<int64_t>(torch::cuda::device_count());
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

void use_num_threads(int n) {
  // at::set_num_threads re-creates ATen's pthreadpool on every call, and the new pool's
  // worker spins for about 30 ms waiting for work, taking a core from whatever runs next
  // (a 2-thread 256×128256 fused call: 12 ms instead of 6.5 ms right after it). So it is
  // skipped when this thread already has n.
  if (at::get_num_threads() != n) at::set_num_threads(n);
}

void set_num_threads(int n) {
  g_requested_threads.store(n);
  use_num_threads(n);
}

int get_num_threads() { return at::get_num_threads(); }

// Async calls use the intra-op thread count sync calls use (setNumThreads(n), else the
// main thread's default): ATen's reductions split their work by the thread count, so any
// other count could give other bits than the same call made synchronously.
int worker_num_threads() {
  const int requested = g_requested_threads.load();
  if (requested > 0) return requested;
  return std::max(1, g_main_default.load());
}

void enter_worker_thread() {
  use_num_threads(worker_num_threads());
}

}  // namespace smoothce
