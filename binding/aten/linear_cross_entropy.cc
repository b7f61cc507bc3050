#include "aten/linear_cross_entropy.h"

#include <ATen/Version.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <tuple>
#include <sstream>
#include <utility>
#include <vector>

namespace smoothce {
namespace {

// ---- Working buffers, reused across row blocks and across calls -------------------------
// A call takes one buffer (the smallest free one that is large enough, on its device) and
// gives it back when it ends; concurrent calls (async calls on the libuv pool) each hold
// their own. At most kPoolKeep buffers are kept; the largest are dropped first.
constexpr size_t kPoolKeep = 4;

class BufferPool {
 public:
  at::Tensor acquire(int64_t bytes, const at::Device& device) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      int best = -1;
      for (size_t i = 0; i < free_.size(); ++i) {
        const at::Tensor& t = free_[i];
        if (t.device() != device || t.numel() < bytes) continue;
        if (best < 0 || t.numel() < free_[static_cast<size_t>(best)].numel()) best = static_cast<int>(i);
      }
      if (best >= 0) {
        at::Tensor t = std::move(free_[static_cast<size_t>(best)]);
        free_.erase(free_.begin() + best);
        return t;
      }
      ++allocations_;
    }
    return at::empty({std::max<int64_t>(bytes, 64)}, at::TensorOptions().dtype(at::kByte).device(device));
  }

  void release(at::Tensor t) noexcept {
    try {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(std::move(t));
      if (free_.size() > kPoolKeep) {
        auto largest = std::max_element(free_.begin(), free_.end(),
                                        [](const at::Tensor& a, const at::Tensor& b) { return a.numel() < b.numel(); });
        free_.erase(largest);
      }
    } catch (...) {
    }
  }

  LinearCePoolStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    LinearCePoolStats s;
    s.free_buffers = static_cast<int64_t>(free_.size());
    for (const at::Tensor& t : free_) s.free_bytes += t.numel();
    s.allocations = allocations_;
    return s;
  }

 private:
  std::mutex mu_;
  std::vector<at::Tensor> free_;
  int64_t allocations_ = 0;
};

BufferPool& pool() {
  static BufferPool* p = new BufferPool();  // never destroyed: no order-of-exit issues with ATen
  return *p;
}

struct Lease {
  at::Tensor buf;
  Lease(int64_t bytes, const at::Device& d) : buf(pool().acquire(bytes, d)) {}
  ~Lease() { pool().release(std::move(buf)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  // A (rows, cols) matrix of `dtype` starting `offset` bytes into the buffer.
  at::Tensor matrix(int64_t rows, int64_t cols, at::ScalarType dtype, int64_t offset = 0) const {
    return at::from_blob(static_cast<uint8_t*>(buf.data_ptr()) + offset, {rows, cols},
                         at::TensorOptions().dtype(dtype).device(buf.device()));
  }
};

// ---- Arguments -----------------------------------------------------------------------------

at::Tensor arg_tensor(const at::Tensor& device_tensor, const RawTensor& raw) {
  if (device_tensor.defined()) return device_tensor;
  return view_raw(raw);
}

// float32/float64 stay; bfloat16/float16 values (already rounded to their dtype) are computed in float32.
at::ScalarType work_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

// A host tensor over caller memory (gradInto), or nullptr.
at::Tensor into_tensor(void* p, at::IntArrayRef shape, at::ScalarType dtype) {
  if (p == nullptr) return at::Tensor();
  return at::from_blob(p, shape, at::TensorOptions().dtype(dtype).device(at::kCPU));
}

// Where a gradient is computed: the caller's buffer when it is on the compute device (CPU),
// else a new tensor there.
at::Tensor grad_buffer(const at::Tensor& into, at::IntArrayRef shape, at::ScalarType dtype, const at::Device& dev) {
  if (into.defined() && dev.is_cpu()) return into;
  return at::empty(shape, at::TensorOptions().dtype(dtype).device(dev));
}

// Hands a computed gradient over: copied into the caller's buffer (device runs), or returned as a host tensor.
at::Tensor deliver(const at::Tensor& computed, const at::Tensor& into, at::IntArrayRef shape) {
  if (into.defined()) {
    if (computed.data_ptr() != into.data_ptr()) into.copy_(computed.view(into.sizes()));
    return at::Tensor();
  }
  at::Tensor host = computed.device().is_cpu() ? computed : computed.cpu();
  return host.view(shape).contiguous();
}

}  // namespace

int64_t linear_ce_block_rows(int64_t n, int64_t classes, int64_t elem, bool probability_target, int64_t working_bytes) {
  const int64_t per_row = std::max<int64_t>(1, classes) * elem * (probability_target ? 2 : 1);
  int64_t rows = working_bytes / per_row;
  // Multiples of 8 rows keep the matrix products on their fast tiles.
  if (rows > 8) rows -= rows % 8;
  return std::max<int64_t>(1, std::min<int64_t>(rows, std::max<int64_t>(n, 1)));
}

LinearCePoolStats linear_ce_pool_stats() { return pool().stats(); }

std::string blas_info() {
  const std::string cfg = at::show_config();
  std::string out;
  for (const char* key : {"BLAS_INFO=", "LAPACK_INFO="}) {
    const size_t at_key = cfg.find(key);
    if (at_key == std::string::npos) continue;
    const size_t end = cfg.find_first_of(", \n", at_key);
    if (!out.empty()) out += ", ";
    out += cfg.substr(at_key, end == std::string::npos ? std::string::npos : end - at_key);
  }
  const bool mkl = at::globalContext().hasMKL();
  const bool mkldnn = at::globalContext().hasMKLDNN();
  if (!out.empty()) out += ", ";
  out += std::string("MKL ") + (mkl ? "yes" : "no") + ", oneDNN " + (mkldnn ? "yes" : "no");
  return out;
}

LinearCrossEntropyResult linear_cross_entropy(const LinearCrossEntropyArgs& args) {
  const at::Device dev = parse_device(args.device);

  at::Tensor x = arg_tensor(args.input_tensor, args.input);
  at::Tensor lw = arg_tensor(args.linear_weight_tensor, args.linear_weight);
  at::Tensor y = arg_tensor(args.target_tensor, args.target);
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "Expected a floating-point dtype for input but received ",
                   x.scalar_type());
  TORCH_CHECK_TYPE(lw.scalar_type() == x.scalar_type(), "Expected linearWeight of input's dtype (", x.scalar_type(),
                   ") but received ", lw.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == 1 || x.dim() == 2, "Expected input of shape (N, H) or (H) but received ",
                    shape_str(x.sizes()));
  TORCH_CHECK_VALUE(lw.dim() == 2, "Expected linearWeight of shape (C, H) but received ", shape_str(lw.sizes()));
  const bool unbatched = x.dim() == 1;
  const int64_t H = x.size(-1);
  TORCH_CHECK_VALUE(lw.size(1) == H, "Expected linearWeight of shape (C, ", H, ") (input's hidden size ", H,
                    ") but received ", shape_str(lw.sizes()));
  const int64_t C = lw.size(0);
  TORCH_CHECK_VALUE(C > 0, "Expected at least one class (linearWeight has 0 rows)");
  const int64_t N = unbatched ? 1 : x.size(0);
  const at::ScalarType wt = work_dtype(x.scalar_type());
  const at::TensorOptions wopt = at::TensorOptions().dtype(wt).device(dev);

  x = x.to(dev, wt).contiguous().view({N, H});
  lw = lw.to(dev, wt).contiguous();
  at::Tensor bias;
  if (args.linear_bias.present) {
    bias = view_raw(args.linear_bias);
    TORCH_CHECK_VALUE(bias.dim() == 1 && bias.size(0) == C, "Expected linearBias of shape [", C,
                      "] (one per class) but received ", shape_str(bias.sizes()));
    bias = bias.to(dev, wt).contiguous();
  }
  at::Tensor cw;
  if (args.weight.present) {
    cw = view_raw(args.weight);
    TORCH_CHECK_VALUE(cw.dim() == 1 && cw.size(0) == C, "Expected weight of shape [", C,
                      "] (one class weight per class) but received ", shape_str(cw.sizes()));
    cw = cw.to(dev, wt).contiguous();
  }

  const bool prob = at::isFloatingType(y.scalar_type());
  if (prob) {
    const std::vector<int64_t> want = unbatched ? std::vector<int64_t>{C} : std::vector<int64_t>{N, C};
    TORCH_CHECK_VALUE(y.sizes() == at::IntArrayRef(want), "Expected probability targets of shape ",
                      shape_str(want), " but received ", shape_str(y.sizes()));
    TORCH_CHECK_VALUE(args.ignore_index < 0, "ignoreIndex is not supported with probability targets");
    y = y.to(dev, wt).contiguous().view({N, C});
  } else {
    const std::vector<int64_t> want = unbatched ? std::vector<int64_t>{} : std::vector<int64_t>{N};
    TORCH_CHECK_VALUE(y.sizes() == at::IntArrayRef(want), "Expected class-index targets of shape ",
                      shape_str(want), " but received ", shape_str(y.sizes()));
    y = y.to(dev, at::kLong).contiguous().view({N});
  }

  const int64_t red = args.reduction;
  TORCH_CHECK_VALUE(red >= 0 && red <= 2, "reduction must be 0 (none), 1 (mean) or 2 (sum)");
  const double eps = args.label_smoothing > 0 ? args.label_smoothing : 0.0;
  TORCH_CHECK_VALUE(eps <= 1.0, "labelSmoothing must be in [0, 1]");
  const double eps_c = eps / static_cast<double>(C);

  // Per-row quantities that need no logits: the target-class weight (0 for ignored rows), the
  // mean's denominator and the upstream gradient of each row's loss.
  at::Tensor valid, y_safe, wy;
  at::Tensor denom;  // 0-d float64
  if (!prob) {
    valid = y.ne(args.ignore_index);
    const at::Tensor bad = valid.logical_and(y.lt(0).logical_or(y.ge(C)));
    if (bad.any().item<bool>()) {
      const int64_t at_pos = bad.nonzero().select(1, 0)[0].item<int64_t>();
      TORCH_CHECK_INDEX(false, "Expected class indices in [0, ", C, ") or ignoreIndex (", args.ignore_index,
                        ") for target but target[", at_pos, "] is ", y[at_pos].item<int64_t>());
    }
    y_safe = y.masked_fill(valid.logical_not(), 0);
    wy = cw.defined() ? cw.index_select(0, y_safe).mul_(valid) : valid.to(wt);
    denom = wy.sum(at::kDouble);
  } else {
    denom = at::full({}, static_cast<double>(N), at::TensorOptions().dtype(at::kDouble).device(dev));
  }
  const at::Tensor sum_w = cw.defined() ? cw.sum(at::kDouble) : at::Tensor();
  const double sum_w_plain = static_cast<double>(C);

  at::Tensor g;  // (N) upstream gradient of each row's loss (wt), 0 on ignored rows
  if (args.want_grad) {
    if (red == at::Reduction::None && args.grad_output.present) {
      g = view_raw(args.grad_output);
      TORCH_CHECK_VALUE(g.numel() == N && g.dim() == (unbatched ? 0 : 1), "Expected gradOutput of shape ",
                        unbatched ? "[]" : shape_str({N}), " (the 'none' loss) but received ", shape_str(g.sizes()));
      g = g.to(dev, wt).reshape({N}).clone();
    } else {
      double scalar = args.grad_output_scalar;
      at::Tensor gs = args.grad_output.present ? view_raw(args.grad_output).to(dev, at::kDouble).reshape({})
                                               : at::full({}, scalar, at::TensorOptions().dtype(at::kDouble).device(dev));
      if (args.grad_output.present)
        TORCH_CHECK_VALUE(view_raw(args.grad_output).numel() == 1, "Expected a 0-d gradOutput for a reduced loss");
      if (red == at::Reduction::Mean) gs = gs / denom;
      // A copy: gs may still view the caller's gradOutput, and g is written below.
      g = gs.to(wt).expand({N}).clone(at::MemoryFormat::Contiguous);
    }
    if (!prob) g.masked_fill_(valid.logical_not(), 0);
  }

  // Coefficients of the logit gradient, per row (class-index targets):
  //   dZ[n, j] = a_n p[n, j] - t_n [j == y_n] - u_n w_j
  // with a_n = g_n ((1-ε) w[y_n] + ε/C Σw), t_n = g_n (1-ε) w[y_n], u_n = g_n ε/C.
  at::Tensor coef_a, coef_t, coef_u;
  if (args.want_grad && !prob) {
    coef_t = g * wy * (1.0 - eps);
    coef_a = coef_t.clone();
    if (eps > 0) {
      coef_u = g * eps_c;
      coef_a.add_(cw.defined() ? coef_u * sum_w.to(wt) : coef_u * sum_w_plain);
    }
  }

  // Outputs.
  const at::ScalarType host = wt;
  LinearCrossEntropyResult result;
  at::Tensor gx_into, gw_into, gb_into, gx, gw, gb;
  if (args.want_grad) {
    gx_into = into_tensor(args.grad_input_into, {N, H}, host);
    gw_into = into_tensor(args.grad_linear_weight_into, {C, H}, host);
    if (bias.defined()) gb_into = into_tensor(args.grad_linear_bias_into, {C}, host);
    gx = grad_buffer(gx_into, {N, H}, wt, dev);
    gw = grad_buffer(gw_into, {C, H}, wt, dev);
    if (bias.defined()) gb = grad_buffer(gb_into, {C}, wt, dev);
  }
  at::Tensor loss_rows;  // 'none'
  if (red == at::Reduction::None) loss_rows = at::empty({N}, wopt);
  at::Tensor nll_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(dev));
  at::Tensor u_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(dev));

  const int64_t elem = static_cast<int64_t>(c10::elementSize(wt));
  const int64_t per_row_bytes = C * elem * (prob ? 2 : 1);
  const int64_t budget = args.working_bytes > 0 ? args.working_bytes
                                                : std::max(kLinearCeDefaultWorkingBytes, kLinearCeDefaultMinRows * per_row_bytes);
  const int64_t R = linear_ce_block_rows(N, C, elem, prob, budget);
  result.block_rows = R;
  const at::Tensor lwt = lw.t();
  std::unique_ptr<Lease> lease;
  if (N > 0) lease = std::make_unique<Lease>(R * C * elem * (prob ? 2 : 1), dev);

  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t rows = std::min(R, N - r0);
    const at::Tensor xr = x.narrow(0, r0, rows);
    at::Tensor z = lease->matrix(rows, C, wt);
    if (bias.defined()) {
      at::addmm_out(z, bias, xr, lwt);
    } else {
      at::mm_out(z, xr, lwt);
    }
    // Shift each row by its maximum, in place (no temporary of the block's size): with
    // z' = z - max, lse' = log Σ exp z' and logp = z' - lse', so every loss term below reads z'.
    z.sub_(std::get<0>(z.max(1, /*keepdim=*/true)));
    at::Tensor row_loss;
    at::Tensor t;  // smoothed, weighted probability targets of the block (probability targets)
    at::Tensor s;  // Σ_c w_c t'_c per row
    at::Tensor nll, u, tz;
    if (!prob) {
      const at::Tensor ys = y_safe.narrow(0, r0, rows);
      nll = z.gather(1, ys.unsqueeze(1)).squeeze(1);                 // z'_y, -> w_y (lse' - z'_y) below
      if (eps > 0) u = cw.defined() ? at::mv(z, cw) : z.sum(1);      // Σ_c w_c z'_c
    } else {
      t = lease->matrix(rows, C, wt, R * C * elem);
      t.copy_(y.narrow(0, r0, rows));
      if (eps > 0) t.mul_(1.0 - eps).add_(eps_c);
      if (cw.defined()) t.mul_(cw);
      s = t.sum(1);
      tz = at::bmm(z.unsqueeze(1), t.unsqueeze(2)).view({rows});   // Σ_c w_c t'_c z'_c
    }
    z.exp_();
    const at::Tensor sumexp = z.sum(1);
    const at::Tensor lse = sumexp.log();
    if (!prob) {
      const at::Tensor invalid = valid.narrow(0, r0, rows).logical_not();
      nll = (lse - nll).mul_(wy.narrow(0, r0, rows)).masked_fill_(invalid, 0);
      nll_sum.add_(nll.sum(at::kDouble));
      if (eps > 0) {
        u = (cw.defined() ? lse * sum_w.to(wt) : lse * sum_w_plain).sub_(u).masked_fill_(invalid, 0);
        u_sum.add_(u.sum(at::kDouble));
        if (loss_rows.defined()) row_loss = nll.mul_(1.0 - eps).add_(u, eps_c);
      } else if (loss_rows.defined()) {
        row_loss = nll;
      }
    } else {
      row_loss = s * lse - tz;
      nll_sum.add_(row_loss.sum(at::kDouble));
    }
    if (loss_rows.defined()) loss_rows.narrow(0, r0, rows).copy_(row_loss);

    if (!args.want_grad) continue;
    // z (= exp z') becomes d loss / d logits of the block, in place: p = exp z' / Σ exp z'.
    if (!prob) {
      z.mul_((coef_a.narrow(0, r0, rows) / sumexp).unsqueeze(1));
      if (eps > 0) {
        const at::Tensor ur = coef_u.narrow(0, r0, rows);
        if (cw.defined()) {
          z.addr_(ur, cw, 1, -1);
        } else {
          z.sub_(ur.unsqueeze(1));
        }
      }
      z.scatter_add_(1, y_safe.narrow(0, r0, rows).unsqueeze(1), coef_t.narrow(0, r0, rows).neg().unsqueeze(1));
    } else {
      const at::Tensor gr = g.narrow(0, r0, rows);
      z.mul_((gr * s / sumexp).unsqueeze(1));
      t.mul_(gr.unsqueeze(1));
      z.sub_(t);
    }
    // grad.linearWeight += blockᵀ · x_block, in tiles of classes: a BLAS packs the block as its
    // "B" operand here, and OpenBLAS's panel for it spans up to tens of thousands of columns, a
    // copy as large as the block itself; tiles of ~2 MiB keep that packing small.
    const int64_t tile = std::max<int64_t>(256, (int64_t{2} << 20) / (rows * elem));
    for (int64_t c0 = 0; c0 < C; c0 += tile) {
      const int64_t cols = std::min(tile, C - c0);
      at::Tensor gws = gw.narrow(0, c0, cols);
      const at::Tensor zs = z.narrow(1, c0, cols).t();
      if (r0 == 0) {
        at::mm_out(gws, zs, xr);
      } else {
        gws.addmm_(zs, xr);
      }
    }
    if (gb.defined()) {
      if (r0 == 0) {
        at::sum_out(gb, z, {0});
      } else {
        gb.add_(z.sum(0));
      }
    }
    // After the products that read xr (gradInto.input may not alias input, but stay safe).
    at::Tensor gxr = gx.narrow(0, r0, rows);
    at::mm_out(gxr, z, lw);
  }
  if (args.want_grad && N == 0) {
    gw.zero_();
    if (gb.defined()) gb.zero_();
  }

  // The loss.
  if (red == at::Reduction::None) {
    at::Tensor l = loss_rows.to(at::kCPU);
    result.loss = unbatched ? l.reshape({}) : l;
  } else {
    at::Tensor total;
    if (prob) {
      total = nll_sum;
      if (red == at::Reduction::Mean) total = total / denom;
    } else {
      at::Tensor nll_part = red == at::Reduction::Mean ? nll_sum / denom : nll_sum;
      total = nll_part * (1.0 - eps);
      if (eps > 0) total = total + (red == at::Reduction::Mean ? u_sum / denom : u_sum) * eps_c;
    }
    result.loss = total.to(at::kCPU).to(wt);
  }
  if (args.want_grad) {
    result.grad_input = deliver(gx, gx_into, unbatched ? std::vector<int64_t>{H} : std::vector<int64_t>{N, H});
    result.grad_linear_weight = deliver(gw, gw_into, {C, H});
    if (gb.defined()) result.grad_linear_bias = deliver(gb, gb_into, {C});
  }
  return result;
}

}  // namespace smoothce
