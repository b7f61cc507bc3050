#include "kernels/fused.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <thread>
#include <vector>

#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#endif

namespace smoothce {
namespace fused_detail {

// Everything one kernel call needs, independent of the instruction set.
template <class T>
struct KernelCtx {
  const T* x = nullptr;
  T* grad = nullptr;      // null: no gradient
  T* loss_out = nullptr;  // reduction none
  int64_t outer = 0, C = 0, inner = 1;
  int64_t positions = 0, block_positions = 1;
  const T* w = nullptr;  // class weights in the input dtype, or null
  double sw = 0;         // Σ w (C when unweighted)
  bool prob = false;
  bool smooth = false;   // index target with ε > 0
  const T* tprob = nullptr;
  const void* target = nullptr;
  at::ScalarType target_type = at::kLong;
  int64_t ignore_index = -100;
  double eps = 0;
  T ta = 1, tb = 0;          // probability targets: t' = t·ta + tb
  const T* gvec = nullptr;  // reduction none: upstream gradient per position
  double gscale = 1;        // otherwise: the per-position upstream factor
  double* partial = nullptr;

  int64_t target_at(int64_t p) const {
    switch (target_type) {
      case at::kInt: return static_cast<const int32_t*>(target)[p];
      case at::kByte: return static_cast<const uint8_t*>(target)[p];
      default: return static_cast<const int64_t*>(target)[p];
    }
  }
};

namespace isa_baseline {
#define SMOOTHCE_VB 16
#include "kernels/fused_kernel.inc"
#undef SMOOTHCE_VB
}  // namespace isa_baseline

#if defined(__x86_64__) && defined(__GNUC__)
#define SMOOTHCE_HAVE_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
#define SMOOTHCE_VB 32
#include "kernels/fused_kernel.inc"
#undef SMOOTHCE_VB
}  // namespace isa_avx2
#pragma GCC pop_options
#endif

bool cpu_has_avx2() {
#ifdef SMOOTHCE_HAVE_AVX2
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

bool use_avx2(FusedIsa isa) { return isa != FusedIsa::Baseline && cpu_has_avx2(); }

template <class T>
void run(const KernelCtx<T>& c, int64_t b0, int64_t b1, bool avx2) {
#ifdef SMOOTHCE_HAVE_AVX2
  if (avx2) return isa_avx2::run_blocks<T>(c, b0, b1);
#endif
  isa_baseline::run_blocks<T>(c, b0, b1);
}

// Where parallel() starts its helper threads. Linux puts a new thread on its parent's CPU
// when it does not see another one as free: on the development VM (2 vCPUs) the helper
// started on the busy caller's CPU in 22 of 48 calls, began 1–4 ms late and then shared
// that CPU with the caller while the other CPU stayed idle, so a 256×128256 forward pass
// took 12–14.6 ms on "2 threads" (one thread's time) instead of 6.5–9. So each helper is
// first bound to a CPU of the caller's affinity mask other than the one the caller runs
// on; after its first piece of work (by then it runs there, and the caller has bound it)
// it takes the whole mask back, so that a CPU that becomes busy later can still shed it.
// With one allowed CPU, or where the calls fail, threads start as before.
class HelperPlacement {
 public:
  explicit HelperPlacement(int64_t helpers) {
#ifdef __linux__
    CPU_ZERO(&mask_);
    if (pthread_getaffinity_np(pthread_self(), sizeof mask_, &mask_) != 0 || CPU_COUNT(&mask_) < 2) return;
    const int here = sched_getcpu();
    if (here < 0) return;
    for (int c = 0; c < CPU_SETSIZE && static_cast<int64_t>(cpus_.size()) < helpers; ++c) {
      if (c != here && CPU_ISSET(c, &mask_)) cpus_.push_back(c);
    }
#endif
  }
  // Called by the caller right after starting helper t (1, 2, ...).
  void bind(std::thread& th, int64_t t) const {
#ifdef __linux__
    if (t < 1 || t > static_cast<int64_t>(cpus_.size())) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus_[static_cast<size_t>(t - 1)], &one);
    pthread_setaffinity_np(th.native_handle(), sizeof one, &one);
#endif
  }
  // Called by helper t after bind(t) has returned.
  void release(int64_t t) const {
#ifdef __linux__
    if (t < 1 || t > static_cast<int64_t>(cpus_.size())) return;
    pthread_setaffinity_np(pthread_self(), sizeof mask_, &mask_);
#endif
  }

 private:
#ifdef __linux__
  cpu_set_t mask_;
  std::vector<int> cpus_;
#endif
};

// Runs fn over [0, n) on at::get_num_threads() threads (the caller is one of them) when
// the work is big enough to pay for starting threads. Our own std::threads: ATen's
// at::parallel_for is an inline template whose OpenMP pragma only takes effect in
// translation units built with -fopenmp, which the addon is not. The range is handed out
// in pieces of about an eighth of a thread's share from a shared counter, not split into
// equal parts up front: on a shared machine one core can run at half speed for a while,
// and the faster thread then takes more pieces instead of waiting. Helpers start on other
// CPUs than the caller's (HelperPlacement). Every piece is computed the same way wherever
// it runs, so results do not depend on the schedule.
template <class F>
void parallel(int64_t n, int64_t work, const F& fn) {
  const int64_t threads = std::min<int64_t>(n, at::get_num_threads());
  if (threads <= 1 || work < (int64_t(1) << 18)) {
    fn(0, n);
    return;
  }
  const int64_t grain = std::max<int64_t>(1, n / (threads * 8));
  std::atomic<int64_t> next{0};
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  const HelperPlacement placement(threads - 1);
  std::atomic<int64_t> bound{0};  // helpers 1..bound have been bound by the caller
  auto drain = [&](int64_t t) {
    bool released = t == 0;
    try {
      for (;;) {
        const int64_t b = next.fetch_add(grain, std::memory_order_relaxed);
        if (b >= n) return;
        fn(b, std::min(n, b + grain));
        if (!released && bound.load(std::memory_order_acquire) >= t) {
          placement.release(t);
          released = true;
        }
      }
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
      next.store(n, std::memory_order_relaxed);  // the others stop after their piece
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int64_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(drain, t);
      placement.bind(pool.back(), t);
      bound.store(t, std::memory_order_release);
    } catch (...) {
      break;  // a thread that cannot start: the others take its pieces
    }
  }
  drain(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

template <class T>
void read_values(const RawTensor& raw, int64_t n, T* out) {
  if (raw.storage == at::kDouble) {
    const double* p = static_cast<const double*>(raw.data);
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(p[i]);
  } else {
    const float* p = static_cast<const float*>(raw.data);
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(p[i]);
  }
}

template <class T>
void compute(const CrossEntropyArgs& a, FusedOutputs& out, bool avx2) {
  KernelCtx<T> c;
  const auto& shape = a.input.shape;
  const bool one_d = shape.size() == 1;
  c.C = one_d ? shape[0] : shape[1];
  c.outer = one_d ? 1 : shape[0];
  c.inner = 1;
  for (size_t d = 2; d < shape.size(); ++d) c.inner *= shape[d];
  c.positions = c.outer * c.inner;
  c.x = static_cast<const T*>(a.input.data);
  c.grad = a.want_grad ? static_cast<T*>(out.grad) : nullptr;
  c.prob = a.target.shape == shape;
  c.eps = a.label_smoothing > 0 ? a.label_smoothing : 0.0;  // NaN and ε <= 0 behave as 0
  c.smooth = !c.prob && c.eps > 0;
  c.ignore_index = a.ignore_index;
  const int64_t C = c.C, P = c.positions;

  std::vector<T> w;
  if (a.weight.present) {
    w.resize(static_cast<size_t>(C));
    read_values<T>(a.weight, C, w.data());
    c.w = w.data();
    double s = 0;
    for (T v : w) s += static_cast<double>(v);
    c.sw = s;
  } else {
    c.sw = static_cast<double>(C);
  }

  double denom = 0;  // mean: D (index) or M (prob)
  if (c.prob) {
    c.tprob = static_cast<const T*>(a.target.data);
    if (c.eps > 0) {
      c.ta = static_cast<T>(1.0 - c.eps);
      c.tb = static_cast<T>(c.eps / static_cast<double>(C));
    }
    denom = static_cast<double>(P);
  } else {
    c.target = a.target.data;
    c.target_type = a.target.storage;
    // Validate every target before anything is written (gradInto may be the input), and
    // compute the mean's denominator Σ w[y] over non-ignored positions.
    for (int64_t p = 0; p < P; ++p) {
      const int64_t y = c.target_at(p);
      if (y == c.ignore_index) continue;
      if (y < 0 || y >= C) TORCH_CHECK_INDEX(false, "Target ", y, " is out of bounds.");
      denom += c.w ? static_cast<double>(c.w[y]) : 1.0;
    }
  }

  const int64_t red = a.reduction;
  std::vector<T> gvec;
  if (c.grad) {
    double g = a.grad_output_scalar;
    if (red == at::Reduction::None) {
      gvec.resize(static_cast<size_t>(P));
      if (a.grad_output.present) {
        read_values<T>(a.grad_output, P, gvec.data());
      } else {
        std::fill(gvec.begin(), gvec.end(), static_cast<T>(g));
      }
      c.gvec = gvec.data();
    } else {
      if (a.grad_output.present) {
        T v;
        read_values<T>(a.grad_output, 1, &v);
        g = static_cast<double>(v);
      }
      g = static_cast<double>(static_cast<T>(g));  // the upstream tensor has the loss dtype
      c.gscale = red == at::Reduction::Mean ? g / denom : g;
    }
  }
  if (red == at::Reduction::None) c.loss_out = static_cast<T*>(out.loss);

  // Fixed blocks of positions (independent of the thread count, so sums are reproducible).
  c.block_positions = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(C, 1));
  const int64_t nblocks = (P + c.block_positions - 1) / c.block_positions;
  std::vector<double> partial;
  if (red != at::Reduction::None) {
    partial.assign(static_cast<size_t>(2 * nblocks), 0.0);
    c.partial = partial.data();
  }
  parallel(nblocks, P * C, [&](int64_t b0, int64_t b1) { run<T>(c, b0, b1, avx2); });

  if (red != at::Reduction::None) {
    double s0 = 0, s1 = 0;
    for (int64_t b = 0; b < nblocks; ++b) {
      s0 += partial[2 * b];
      s1 += partial[2 * b + 1];
    }
    double loss;
    const double eps_c = c.eps / static_cast<double>(C);
    if (c.prob) {
      loss = red == at::Reduction::Mean ? s0 / denom : s0;
    } else if (red == at::Reduction::Mean) {
      // Two quotients, as PyTorch forms them: D = 0 gives NaN even when Σu ≠ 0.
      loss = (1.0 - c.eps) * (s0 / denom) + (c.smooth ? eps_c * (s1 / denom) : 0.0);
    } else {
      loss = (1.0 - c.eps) * s0 + (c.smooth ? eps_c * s1 : 0.0);
    }
    out.scalar_loss = static_cast<double>(static_cast<T>(loss));
  }
}

template <class T>
double read_pass(const T* x, int64_t n, bool avx2) {
  const int64_t chunk = int64_t(1) << 16;
  const int64_t nb = (n + chunk - 1) / chunk;
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(nb, 1)), 0.0);
  parallel(nb, n, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t s = b * chunk, e = std::min(n, s + chunk);
#ifdef SMOOTHCE_HAVE_AVX2
      part[b] = avx2 ? isa_avx2::floor_read<T>(x, s, e) : isa_baseline::floor_read<T>(x, s, e);
#else
      part[b] = isa_baseline::floor_read<T>(x, s, e);
#endif
    }
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

template <class T>
void read_write_pass(const T* x, T* y, int64_t n, bool avx2) {
  const int64_t chunk = int64_t(1) << 16;
  const int64_t nb = (n + chunk - 1) / chunk;
  parallel(nb, n, [&](int64_t b0, int64_t b1) {
    const int64_t s = b0 * chunk, e = std::min(n, b1 * chunk);
#ifdef SMOOTHCE_HAVE_AVX2
    if (avx2) return isa_avx2::floor_read_write<T>(x, y, s, e);
#endif
    isa_baseline::floor_read_write<T>(x, y, s, e);
  });
}

double compute_pass(int64_t units, bool avx2) {
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(units, 1)), 0.0);
  parallel(units, units << 14, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
#ifdef SMOOTHCE_HAVE_AVX2
      part[b] = avx2 ? isa_avx2::floor_compute(b) : isa_baseline::floor_compute(b);
#else
      part[b] = isa_baseline::floor_compute(b);
#endif
    }
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

}  // namespace fused_detail

std::string fused_unsupported_reason(const CrossEntropyArgs& a) {
  if (!a.device.empty() && a.device != "cpu") return "device is not 'cpu'";
  const at::ScalarType dt = a.input.storage;
  if (a.input.compute != dt || (dt != at::kFloat && dt != at::kDouble)) {
    return "input dtype is not float32/float64 (bfloat16/float16 run in ATen)";
  }
  const auto& shape = a.input.shape;
  if (shape.empty()) return "0-d input";
  const int64_t C = shape.size() == 1 ? shape[0] : shape[1];
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel == 0 || C == 0) return "empty input";
  // (Both target kinds: the kernel reads C weights.)
  if (a.weight.present && (a.weight.shape.size() != 1 || a.weight.shape[0] != C)) return "weight shape (ATen raises)";
  const bool prob = a.target.shape == shape;
  if (prob) {
    if (a.target.storage != dt || a.target.compute != dt) return "probability target dtype differs from the input's";
    if (a.weight.present && a.weight.storage != dt) return "weight dtype differs from the input's (probability target)";
    if (a.ignore_index >= 0) return "ignore_index >= 0 with probability targets (ATen raises)";
  } else {
    const at::ScalarType tt = a.target.storage;
    if (tt != at::kLong && tt != at::kInt && tt != at::kByte) return "target dtype is not int64/int32/uint8";
    std::vector<int64_t> expected;
    if (shape.size() > 1) {
      expected.push_back(shape[0]);
      for (size_t d = 2; d < shape.size(); ++d) expected.push_back(shape[d]);
    }
    if (a.target.shape != expected) return "target shape does not match the input (ATen reports the error)";
    if (tt == at::kByte && shape.size() > 2) return "uint8 target with k-dim input (ATen raises)";
    if (tt == at::kByte && a.weight.present && a.label_smoothing > 0 && a.reduction == at::Reduction::Mean) {
      return "uint8 target with weight, smoothing and mean (ATen raises in gather)";
    }
    // ATen's smoothing term masks `target == ignore_index` in the target's dtype, so for uint8
    // targets an ignore_index outside 0..255 is compared wrapped to 8 bits (-100 as 156, -1 as
    // 255, 256 as 0) while nll_loss compares it unwrapped: a target equal to the wrapped value
    // then counts in one term and not in the other.
    if (tt == at::kByte && a.label_smoothing > 0 && (a.ignore_index < 0 || a.ignore_index > 255) &&
        (a.ignore_index & 255) < C) {
      return "uint8 target, smoothing and an ignore_index outside 0..255 (ATen's smoothing term wraps it to 8 bits)";
    }
  }
  if (a.reduction < 0 || a.reduction > 2) return "reduction enum outside 0..2";
  if (!(a.label_smoothing <= 1.0)) return "label_smoothing > 1 (ATen raises)";
  if (a.want_grad && a.grad_output.present) {
    int64_t n = 1;
    for (int64_t d : a.grad_output.shape) n *= d;
    const int64_t positions = numel / C;
    if (n != (a.reduction == at::Reduction::None ? positions : 1)) return "gradOutput shape (ATen reports the error)";
    if (a.grad_output.storage != at::kFloat && a.grad_output.storage != at::kDouble) return "gradOutput dtype";
  }
  return "";
}

namespace {
bool overlaps(const void* a, size_t an, const void* b, size_t bn) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return an > 0 && bn > 0 && pa < pb + bn && pb < pa + an;
}
size_t raw_bytes(const RawTensor& r) {
  if (!r.present || r.data == nullptr) return 0;
  int64_t n = 1;
  for (int64_t d : r.shape) n *= d;
  return static_cast<size_t>(n) * c10::elementSize(r.storage);
}
}  // namespace

void check_grad_into(const CrossEntropyArgs& a, const void* g, size_t bytes) {
  const size_t in_bytes = raw_bytes(a.input);
  TORCH_CHECK_VALUE(bytes == in_bytes, "gradInto has ", bytes, " bytes but the gradient needs ", in_bytes);
  const bool same = g == a.input.data;
  TORCH_CHECK_VALUE(same || !overlaps(g, bytes, a.input.data, in_bytes),
                    "gradInto overlaps the input without being the same memory");
  TORCH_CHECK_VALUE(!overlaps(g, bytes, a.target.data, raw_bytes(a.target)), "gradInto overlaps the target");
  TORCH_CHECK_VALUE(!overlaps(g, bytes, a.weight.data, raw_bytes(a.weight)), "gradInto overlaps the weight");
  TORCH_CHECK_VALUE(!overlaps(g, bytes, a.grad_output.data, raw_bytes(a.grad_output)),
                    "gradInto overlaps gradOutput");
}

void check_loss_into(const CrossEntropyArgs& a, const void* l, size_t bytes, const void* grad) {
  TORCH_CHECK_VALUE(!overlaps(l, bytes, a.input.data, raw_bytes(a.input)) &&
                        !overlaps(l, bytes, a.target.data, raw_bytes(a.target)) &&
                        !overlaps(l, bytes, a.weight.data, raw_bytes(a.weight)) &&
                        !overlaps(l, bytes, a.grad_output.data, raw_bytes(a.grad_output)) &&
                        !overlaps(l, bytes, grad, grad != nullptr ? raw_bytes(a.input) : 0),
                    "lossInto overlaps another argument");
}

void fused_cross_entropy(const CrossEntropyArgs& args, FusedOutputs& out, FusedIsa isa) {
  const std::string why = fused_unsupported_reason(args);
  TORCH_CHECK(why.empty(), "the fused kernel does not handle this call: ", why);
  TORCH_CHECK(!args.want_grad || out.grad != nullptr, "fused kernel: no gradient buffer");
  TORCH_CHECK(args.reduction != at::Reduction::None || out.loss != nullptr, "fused kernel: no loss buffer");
  const bool avx2 = fused_detail::use_avx2(isa);
  if (args.input.storage == at::kDouble) {
    fused_detail::compute<double>(args, out, avx2);
  } else {
    fused_detail::compute<float>(args, out, avx2);
  }
}

const char* fused_isa_name(FusedIsa isa) { return fused_detail::use_avx2(isa) ? "avx2" : "baseline"; }

FusedIsa parse_fused_isa(const std::string& name) {
  if (name == "avx2") return FusedIsa::Avx2;
  if (name == "baseline" || name == "sse2") return FusedIsa::Baseline;
  return FusedIsa::Auto;
}

void parallel_copy(void* dst, const void* src, size_t bytes) {
  constexpr size_t kPiece = size_t(1) << 20;
  const int64_t pieces = static_cast<int64_t>((bytes + kPiece - 1) / kPiece);
  // parallel() starts threads from 2^18 units of work: 16 bytes a unit here, so from 4 MiB.
  fused_detail::parallel(pieces, static_cast<int64_t>(bytes / 16), [&](int64_t b0, int64_t b1) {
    const size_t s = static_cast<size_t>(b0) * kPiece, e = std::min(bytes, static_cast<size_t>(b1) * kPiece);
    std::memcpy(static_cast<char*>(dst) + s, static_cast<const char*>(src) + s, e - s);
  });
}

double floor_read_pass(const void* data, int64_t n, at::ScalarType dtype) {
  const bool avx2 = fused_detail::use_avx2(FusedIsa::Auto);
  if (dtype == at::kDouble) return fused_detail::read_pass(static_cast<const double*>(data), n, avx2);
  return fused_detail::read_pass(static_cast<const float*>(data), n, avx2);
}

double floor_compute_pass(int64_t units) {
  return fused_detail::compute_pass(units, fused_detail::use_avx2(FusedIsa::Auto));
}

void floor_read_write_pass(const void* in, void* out, int64_t n, at::ScalarType dtype) {
  const bool avx2 = fused_detail::use_avx2(FusedIsa::Auto);
  if (dtype == at::kDouble) {
    fused_detail::read_write_pass(static_cast<const double*>(in), static_cast<double*>(out), n, avx2);
  } else {
    fused_detail::read_write_pass(static_cast<const float*>(in), static_cast<float*>(out), n, avx2);
  }
}

}  // namespace smoothce
