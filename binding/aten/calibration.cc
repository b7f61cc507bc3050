#include "aten/calibration.h"
#include "aten/format.h"

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

// Only APIs that are the same in LibTorch 1.13 and 2.x: softmax/log_softmax, max(dim),
// masked_fill, bucketize(out_int32, right), index_add_, gather, scatter_, sort,
// unique_consecutive, linspace(Scalar, Scalar, steps, options).

namespace smoothce {
namespace {

at::Tensor host_doubles(const std::vector<double>& v, const at::Device& device) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(at::kDouble));
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t.to(device);
}

at::Tensor to_cpu_double(const at::Tensor& t) { return t.to(at::kDouble).cpu().contiguous(); }

// The first (row, column) where mask is true, as text; mask is (N, K).
std::string first_where(const at::Tensor& mask2d, const at::Tensor& values, int64_t* row = nullptr) {
  at::Tensor at_ = mask2d.nonzero().select(0, 0).cpu();
  const int64_t i = at_[0].item<int64_t>();
  const int64_t k = at_.size(0) > 1 ? at_[1].item<int64_t>() : -1;
  if (row) *row = i;
  if (k < 0) return js_number(values[i].item<double>()) + " at index " + std::to_string(i);
  return js_number(values[i][k].item<double>()) + " at [" + std::to_string(i) + ", " + std::to_string(k) + "]";
}

void check_shapes(const at::Tensor& scores, const at::Tensor& labels, const std::string& name) {
  TORCH_CHECK_VALUE(scores.dim() == 2, "Expected ", name, " of shape (N, K) but received a tensor of shape ", scores.sizes());
  TORCH_CHECK_VALUE(scores.size(0) >= 1, "Expected at least one sample (N >= 1) in ", name, " but received shape ",
                    scores.sizes());
  TORCH_CHECK_VALUE(scores.size(1) >= 2, "Expected at least 2 classes (K >= 2) in ", name, " but received shape ",
                    scores.sizes());
  TORCH_CHECK_VALUE(labels.dim() == 1 && labels.size(0) == scores.size(0), "Expected labels of shape [",
                    scores.size(0), "] (one per row of ", name, ") but received shape ", labels.sizes());
}

void check_labels(const at::Tensor& labels, int64_t K) {
  at::Tensor bad = (labels < 0).logical_or(labels >= K);
  if (bad.any().item<bool>()) {
    const int64_t i = bad.nonzero().select(0, 0)[0].item<int64_t>();
    TORCH_CHECK_VALUE(false, "Expected class indices in [0, ", K - 1, "] for labels but received ",
                      labels[i].item<int64_t>(), " at index ", i);
  }
}

void check_probabilities(const at::Tensor& p, double tol, const std::string& name) {
  at::Tensor bad = (p >= 0).logical_and(p <= 1).logical_not();  // NaN fails both
  if (bad.any().item<bool>()) {
    TORCH_CHECK_VALUE(false, "Expected probabilities in [0, 1] for ", name, " (from: 'probs') but received ",
                      first_where(bad, p), " (pass from: 'logits' for unnormalised scores)");
  }
  at::Tensor sums = p.to(at::kDouble).sum(1);
  at::Tensor off = (sums - 1.0).abs() > tol;
  if (off.any().item<bool>()) {
    const int64_t i = off.nonzero().select(0, 0)[0].item<int64_t>();
    TORCH_CHECK_VALUE(false, "Expected each row of ", name, " (from: 'probs') to sum to 1 within ", js_number(tol),
                      " but row ", i, " sums to ", js_number(sums[i].item<double>()),
                      " (pass from: 'logits' for unnormalised scores)");
  }
}

void check_logits(const at::Tensor& z, const std::string& name) {
  at::Tensor bad = at::isfinite(z).logical_not();
  if (bad.any().item<bool>()) {
    TORCH_CHECK_VALUE(false, "Expected finite logits for ", name, " but received ", first_where(bad, z));
  }
}

// Bin index of each value (any shape) under a uniform binning; `valid` is false for
// values the convention drops (0 under Guo's (lo, hi] rule).
struct Binned {
  at::Tensor idx;    // int64, same shape as values
  at::Tensor valid;  // bool
  int64_t total = 0; // number of bins (B, or B + 1 for torchmetrics)
  at::Tensor edges;  // CPU double, B + 1 entries: the edges actually compared against
};

Binned uniform_bins(const at::Tensor& values, int64_t B, Convention c) {
  const at::Device dev = values.device();
  Binned out;
  at::Tensor v = values;
  at::Tensor edges;
  if (c == Convention::Netcal) {
    // numpy.linspace(0, 1, B + 1): i * (1 / B), last edge exactly 1; compared in float64.
    std::vector<double> e(static_cast<size_t>(B + 1));
    const double step = 1.0 / static_cast<double>(B);
    for (int64_t i = 0; i < B; ++i) e[static_cast<size_t>(i)] = static_cast<double>(i) * step;
    e[static_cast<size_t>(B)] = 1.0;
    edges = host_doubles(e, dev);
    v = values.to(at::kDouble);
  } else {
    // torch.linspace(0, 1, B + 1) in float32 (Guo's reference and torchmetrics), compared
    // in the confidences' dtype.
    edges = at::linspace(0.0, 1.0, B + 1, at::TensorOptions().dtype(at::kFloat).device(dev)).to(values.scalar_type());
  }
  switch (c) {
    case Convention::Guo: {
      at::Tensor i = at::bucketize(v, edges, /*out_int32=*/false, /*right=*/false) - 1;  // (lo, hi]
      out.valid = i >= 0;
      out.idx = i.clamp_min(0);
      out.total = B;
      break;
    }
    case Convention::TorchMetrics: {
      out.idx = at::bucketize(v, edges, false, /*right=*/true) - 1;  // [lo, hi); 1.0 -> B
      out.valid = at::ones_like(out.idx, at::TensorOptions().dtype(at::kBool));
      out.total = B + 1;
      break;
    }
    case Convention::Netcal: {
      out.idx = (at::bucketize(v, edges, false, /*right=*/true) - 1).clamp(0, B - 1);  // last bin closed
      out.valid = at::ones_like(out.idx, at::TensorOptions().dtype(at::kBool));
      out.total = B;
      break;
    }
  }
  out.edges = to_cpu_double(edges);
  return out;
}

// Per-bin count, value sum and hit sum of 1-D inputs (all on one device).
BinSums bin_sums(const at::Tensor& idx, const at::Tensor& valid, int64_t total, const at::Tensor& value,
                 const at::Tensor& hit) {
  const auto opts = at::TensorOptions().dtype(at::kDouble).device(idx.device());
  at::Tensor w = valid.to(at::kDouble);
  BinSums s;
  s.count = at::zeros({total}, opts).index_add_(0, idx, w);
  s.conf_sum = at::zeros({total}, opts).index_add_(0, idx, value.to(at::kDouble) * w);
  s.acc_sum = at::zeros({total}, opts).index_add_(0, idx, hit.to(at::kDouble) * w);
  s.count = to_cpu_double(s.count);
  s.conf_sum = to_cpu_double(s.conf_sum);
  s.acc_sum = to_cpu_double(s.acc_sum);
  return s;
}

// Equal-mass bins of the top-label confidences.
//  guo / torchmetrics: uncertainty-calibration's get_equal_bins (get_ece_em): sort, split
//    with numpy.array_split into min(B, N) parts, upper edges at the midpoints between
//    adjacent parts plus 1.0, de-duplicated; searchsorted(side='left'): (lo, hi].
//  netcal: numpy.quantile(c, linspace(0, 1, B + 1)) (linear), first edge 0, last 1,
//    histogram rule ([lo, hi), last bin closed).
BinSums adaptive_bins(const at::Tensor& conf, const at::Tensor& correct, int64_t B, Convention c) {
  const int64_t N = conf.size(0);
  const at::Device dev = conf.device();
  at::Tensor sorted = std::get<0>(conf.to(at::kDouble).sort());
  at::Tensor conf_d = conf.to(at::kDouble);
  at::Tensor idx, edges_full;
  if (c == Convention::Netcal) {
    at::Tensor s = sorted.cpu().contiguous();
    const double* sp = s.data_ptr<double>();
    std::vector<double> e(static_cast<size_t>(B + 1));
    const double step = 1.0 / static_cast<double>(B);
    for (int64_t i = 0; i <= B; ++i) {
      const double q = i == B ? 1.0 : static_cast<double>(i) * step;
      const double virt = static_cast<double>(N - 1) * q;  // numpy 'linear': (n - 1) * q
      const double lo_d = std::floor(virt);
      const int64_t lo = std::min<int64_t>(static_cast<int64_t>(lo_d), N - 1);
      const int64_t hi = std::min<int64_t>(lo + 1, N - 1);
      const double t = virt - lo_d;
      const double a = sp[lo], b = sp[hi], d = b - a;
      e[static_cast<size_t>(i)] = t >= 0.5 ? b - d * (1.0 - t) : a + d * t;  // numpy's _lerp
    }
    e.front() = 0.0;
    e.back() = 1.0;
    at::Tensor edges = host_doubles(e, dev);
    idx = (at::bucketize(conf_d, edges, false, /*right=*/true) - 1).clamp(0, B - 1);
    edges_full = to_cpu_double(edges);
  } else {
    const int64_t parts = std::min(B, N);
    const int64_t q = N / parts, r = N % parts;
    std::vector<int64_t> starts;
    for (int64_t j = 1; j < parts; ++j) starts.push_back(j * q + std::min(j, r));
    at::Tensor upper;
    if (!starts.empty()) {
      at::Tensor st = at::empty({static_cast<int64_t>(starts.size())}, at::TensorOptions().dtype(at::kLong));
      std::copy(starts.begin(), starts.end(), st.data_ptr<int64_t>());
      st = st.to(dev);
      at::Tensor mids = (sorted.index_select(0, st - 1) + sorted.index_select(0, st)) / 2.0;
      upper = at::cat({mids, at::ones({1}, mids.options())});
    } else {
      upper = at::ones({1}, sorted.options());
    }
    upper = std::get<0>(at::unique_consecutive(upper));  // nondecreasing already
    idx = at::bucketize(conf_d, upper, false, /*right=*/false);  // first edge >= c
    edges_full = to_cpu_double(at::cat({at::zeros({1}, upper.options()), upper}));
  }
  const int64_t total = edges_full.size(0) - 1;
  BinSums s = bin_sums(idx, at::ones_like(idx, at::TensorOptions().dtype(at::kBool)), total, conf_d, correct);
  s.edges = edges_full;
  return s;
}

}  // namespace

CalibrationStats calibration_stats(const CalibrationArgs& args) {
  TORCH_CHECK_VALUE(args.bins >= 1, "Expected an integer >= 1 for bins but received ", args.bins);
  TORCH_CHECK_VALUE(std::isfinite(args.temperature) && args.temperature > 0,
                    "Expected a positive finite number for temperature but received ", js_number(args.temperature));
  const at::Device device = parse_device(args.device);
  c10::InferenceMode guard;

  at::Tensor scores = view_raw(args.scores);
  if (scores.scalar_type() != at::kFloat && scores.scalar_type() != at::kDouble) scores = scores.to(at::kFloat);
  at::Tensor labels = view_raw(args.labels).to(at::kLong);
  scores = scores.to(device);
  labels = labels.to(device);
  check_shapes(scores, labels, args.scores_name);
  const int64_t N = scores.size(0), K = scores.size(1), B = args.bins;
  check_labels(labels, K);

  at::Tensor probs, logp_y;
  if (args.from_logits) {
    check_logits(scores, args.scores_name);
    at::Tensor z = args.temperature == 1.0 ? scores : scores / args.temperature;
    probs = at::softmax(z, 1);
    logp_y = at::log_softmax(z, 1).gather(1, labels.unsqueeze(1)).squeeze(1);
  } else {
    TORCH_CHECK_VALUE(args.temperature == 1.0,
                      "temperature applies to logits: pass from: 'logits' (received temperature ",
                      js_number(args.temperature), " with from: 'probs')");
    check_probabilities(scores, args.sum_tolerance, args.scores_name);
    probs = scores;
  }
  const at::ScalarType dt = probs.scalar_type();

  CalibrationStats st;
  st.n = N;
  st.classes = K;

  // Confidence and prediction; ties in the maximum go to the lowest class index.
  at::Tensor conf = std::get<0>(probs.max(1));
  at::Tensor cls = at::arange(K, labels.options()).unsqueeze(0).expand({N, K});
  at::Tensor pred = std::get<0>(cls.masked_fill(probs != conf.unsqueeze(1), K).min(1));
  at::Tensor correct = (pred == labels).to(at::kDouble);
  st.correct = correct.sum().item<double>();

  at::Tensor p_y = probs.gather(1, labels.unsqueeze(1)).squeeze(1);
  if (args.from_logits) {
    st.nll_sum = -logp_y.to(at::kDouble).sum().item<double>();
  } else {
    const double eps = dt == at::kFloat ? static_cast<double>(std::numeric_limits<float>::epsilon())
                                        : std::numeric_limits<double>::epsilon();
    at::Tensor pyd = p_y.to(at::kDouble);
    st.nll_clamped = (pyd < eps).sum().item<int64_t>();
    st.nll_sum = -pyd.clamp_min(eps).log().sum().item<double>();
  }
  at::Tensor pd = probs.to(at::kDouble);
  st.brier_sum = (pd.pow(2).sum(1) - 2.0 * p_y.to(at::kDouble) + 1.0).sum().item<double>();

  Binned top = uniform_bins(conf, B, args.convention);
  st.top = bin_sums(top.idx, top.valid, top.total, conf, correct);
  st.top.edges = top.edges;

  if (args.classwise) {
    Binned cw = uniform_bins(probs, B, args.convention);  // (N, K)
    at::Tensor offset = at::arange(K, labels.options()).mul(cw.total).unsqueeze(0);
    at::Tensor flat = (cw.idx + offset).reshape({-1});
    at::Tensor hits = at::zeros({N, K}, pd.options()).scatter_(1, labels.unsqueeze(1), 1.0);
    BinSums s = bin_sums(flat, cw.valid.reshape({-1}), K * cw.total, probs.reshape({-1}), hits.reshape({-1}));
    st.classwise.edges = cw.edges;
    st.classwise.count = s.count.view({K, cw.total});
    st.classwise.conf_sum = s.conf_sum.view({K, cw.total});
    st.classwise.acc_sum = s.acc_sum.view({K, cw.total});
  }
  if (args.adaptive) st.adaptive = adaptive_bins(conf, correct, B, args.convention);
  if (args.rows) {
    // float64 throughout, as numpy computes from float64 logits; argmax gives the first index
    // of the largest probability.
    at::Tensor p64;
    if (args.from_logits) {
      at::Tensor z64 = scores.to(at::kDouble);
      p64 = at::softmax(args.temperature == 1.0 ? z64 : z64 / args.temperature, 1);
      at::Tensor zc = z64 - z64.mean(1, /*keepdim=*/true);
      at::Tensor norm = zc.pow(2).sum(1).sqrt();
      at::Tensor top = std::get<0>(zc.max(1));
      at::Tensor nml = at::where(norm > 0, top / norm, at::zeros_like(norm));
      st.row_order_nml = std::get<1>(at::sort(nml, /*stable=*/true, /*dim=*/0, /*descending=*/true)).to(at::kInt).cpu().contiguous();
      st.row_nml = nml.cpu().contiguous();
    } else {
      p64 = scores.to(at::kDouble);
    }
    at::Tensor rpred = p64.argmax(1);
    at::Tensor rconf = p64.gather(1, rpred.unsqueeze(1)).squeeze(1);
    // The AURC ranking: descending, ties in row order (a stable sort keeps equal values in order).
    st.row_order = std::get<1>(at::sort(rconf, /*stable=*/true, /*dim=*/0, /*descending=*/true)).to(at::kInt).cpu().contiguous();
    st.row_conf = rconf.cpu().contiguous();
    st.row_correct = (rpred == labels).to(at::kByte).cpu().contiguous();
    st.row_pred = rpred.to(at::kInt).cpu().contiguous();
  }
  return st;
}

namespace {

struct NllEval {
  double f, g, h;  // mean NLL, d/dbeta, d2/dbeta2
};

// d = z - z_y (per row): derivatives written in d are not lost to rounding when the
// softmax is nearly one-hot (E_p[z] - z_y would round to 0 there while h > 0).
NllEval eval_nll(const at::Tensor& d, double beta) {
  at::Tensor s = d * beta;
  at::Tensor lse = at::logsumexp(s, {1});  // = NLL of each row
  at::Tensor p = (s - lse.unsqueeze(1)).exp();
  at::Tensor g = (p * d).sum(1);
  at::Tensor var = (p * (d - g.unsqueeze(1)).pow(2)).sum(1);
  NllEval e;
  e.f = lse.mean().item<double>();
  e.g = g.mean().item<double>();
  e.h = var.mean().item<double>();
  return e;
}

}  // namespace

TemperatureResult fit_temperature(const RawTensor& logits_raw, const RawTensor& labels_raw, const std::string& dev) {
  const at::Device device = parse_device(dev);
  c10::InferenceMode guard;
  at::Tensor z = view_raw(logits_raw).to(at::kDouble).to(device);
  at::Tensor labels = view_raw(labels_raw).to(at::kLong).to(device);
  check_shapes(z, labels, "logits");
  check_labels(labels, z.size(1));
  check_logits(z, "logits");
  const at::Tensor d = z - z.gather(1, labels.unsqueeze(1));

  TemperatureResult r;

  // g(beta) = dNLL/dbeta is nondecreasing. Bracket its root within [1e-6, 1e6].
  constexpr double kMin = 1e-6, kMax = 1e6;
  double lo = 1.0, hi = 1.0;
  // A derivative of exactly 0 with a zero second derivative means every softmax has
  // saturated to one-hot (logits that separate the data): the NLL is still falling
  // towards T -> 0 there, so it counts as negative.
  auto negative = [](const NllEval& e) { return e.g < 0 || (e.g == 0 && e.h == 0); };
  NllEval at1 = eval_nll(d, 1.0);
  r.nll_before = at1.f;
  int64_t evals = 1;
  if (at1.g == 0.0 && at1.h > 0) {
    r.temperature = 1.0;
    r.nll_after = at1.f;
    r.iterations = evals;
    return r;
  }
  // The minimum lies past a bound of the search: report the bound's temperature and NLL.
  auto at_bound = [&](double beta) {
    r.temperature = 1.0 / beta;
    r.nll_after = eval_nll(d, beta).f;
    r.at_bound = true;
    r.iterations = evals + 1;
    return r;
  };
  if (negative(at1)) {  // the minimum is at a larger beta (smaller T)
    while (true) {
      hi = lo * 2.0;
      if (hi > kMax) return at_bound(kMax);
      NllEval e = eval_nll(d, hi);
      ++evals;
      if (!negative(e)) break;
      lo = hi;
    }
  } else {
    while (true) {
      lo = hi / 2.0;
      if (lo < kMin) return at_bound(kMin);
      NllEval e = eval_nll(d, lo);
      ++evals;
      if (negative(e) || e.g == 0) break;
      hi = lo;
    }
  }
  // Safeguarded Newton on [lo, hi], g(lo) <= 0 <= g(hi).
  double beta = 0.5 * (lo + hi);
  NllEval e = eval_nll(d, beta);
  ++evals;
  for (int it = 0; it < 200; ++it) {
    if (e.g == 0.0 && e.h > 0) break;
    if (negative(e)) lo = beta; else hi = beta;
    double next = e.h > 0 ? beta - e.g / e.h : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    const double step = std::abs(next - beta);
    beta = next;
    e = eval_nll(d, beta);
    ++evals;
    if (step <= 4 * std::numeric_limits<double>::epsilon() * beta || (hi - lo) <= 4 * std::numeric_limits<double>::epsilon() * hi) break;
  }
  r.temperature = 1.0 / beta;
  r.nll_after = e.f;
  r.iterations = evals;
  return r;
}

}  // namespace smoothce
