// Calibration scoring, pure ATen (no napi.h): the sufficient statistics of a batch
// (per-bin counts and sums, NLL and Brier sums) and temperature scaling. All heavy
// work (softmax, max, bucketize, index_add, gather, sort) runs on the input's device.
// The metrics themselves are simple arithmetic over these statistics and are finished
// in TypeScript (lib/calibration/metrics.ts), which is also what lets an accumulator
// merge partial results exactly. Definitions: docs/calibration.md.
#pragma once

#include <ATen/ATen.h>

#include "aten/cross_entropy.h"

#include <cstdint>
#include <string>

namespace smoothce {

// Which library's bin-edge rule to follow (see docs/calibration.md).
enum class Convention : int64_t {
  Guo = 0,           // edges torch.linspace(0,1,B+1) float32; bins (lo, hi]; 0 dropped
  TorchMetrics = 1,  // same edges; bucketize(right=True)-1: [lo, hi), value 1.0 in an extra bin B
  Netcal = 2,        // edges np.linspace(0,1,B+1) float64; histogram: [lo, hi), last bin [lo, 1]
};

struct CalibrationArgs {
  RawTensor scores;  // (N, K) float32/float64: logits or probabilities
  RawTensor labels;  // (N) int32/int64
  bool from_logits = false;
  double temperature = 1.0;  // logits are divided by it before the softmax
  int64_t bins = 15;
  Convention convention = Convention::Guo;
  bool classwise = true;   // per-class bins (classwise ECE)
  bool adaptive = true;    // equal-mass bins (adaptive ECE); needs all confidences at once
  double sum_tolerance = 1e-3;  // |row sum - 1| allowed for probabilities
  bool rows = false;  // also return the per-row top-label values (row_conf ... row_nml below), in float64
  std::string device = "cpu";
  std::string scores_name = "scores";  // the parameter name used in error messages
};

// Per-bin sums over one binning. edges has nb+1 entries (lo of bin b is edges[b], hi is
// edges[b+1]), except for the torchmetrics convention where count/conf_sum/acc_sum have
// one more entry than edges has gaps: the extra bin that holds confidence exactly 1.0.
// All CPU float64.
struct BinSums {
  at::Tensor edges;
  at::Tensor count;
  at::Tensor conf_sum;  // sum of confidences (or of p_k for classwise)
  at::Tensor acc_sum;   // sum of correctness (or of 1[y = k] for classwise)
};

struct CalibrationStats {
  int64_t n = 0;
  int64_t classes = 0;
  double correct = 0;      // sum of 1[argmax = y] (ties: lowest class index)
  double nll_sum = 0;      // sum of -log p_y
  double brier_sum = 0;    // sum over rows of sum_k (p_k - 1[y = k])^2
  int64_t nll_clamped = 0; // rows whose p_y was raised to the dtype's eps before the log
  BinSums top;             // top-label, uniform bins
  BinSums classwise;       // count/conf_sum/acc_sum are (K, nb); undefined unless asked
  BinSums adaptive;        // top-label, equal-mass bins; undefined unless asked
  // Per-row top-label values, computed in float64 whatever the input dtype (float32 is widened
  // exactly first), CPU, contiguous; undefined unless args.rows. They feed SmoothECE, top-label
  // ECE and AURC (lib/calibration/rows.ts):
  at::Tensor row_conf;     // (N) float64: max_k p_k, p = softmax(z / T) of the float64 logits, or the probabilities
  at::Tensor row_correct;  // (N) uint8: argmax (first index of the largest p) == label
  at::Tensor row_pred;     // (N) int32: that argmax
  at::Tensor row_nml;      // (N) float64, logits only: max_k (z_k - mean z) / ||z - mean z||_2 (0 for a constant row)
  at::Tensor row_order;      // (N) int32: rows by row_conf descending, equal values in row order (stable sort)
  at::Tensor row_order_nml;  // (N) int32, logits only: the same by row_nml
};

// Validates the data (probabilities in [0, 1] summing to 1, finite logits, labels in
// range) and computes the statistics. Throws c10::ValueError (-> RangeError) naming the
// parameter and the offending value.
CalibrationStats calibration_stats(const CalibrationArgs& args);

struct TemperatureResult {
  double temperature = 1.0;
  double nll_before = 0;  // mean NLL at T = 1
  double nll_after = 0;   // mean NLL at the fitted T
  int64_t iterations = 0;
  bool at_bound = false;  // the optimum lies outside [1e-6, 1e6]: the bound is returned
};

// T = argmin_T mean(-log softmax(z / T)_y), found deterministically: NLL is convex in
// beta = 1/T (its second derivative is the mean variance of z under softmax(beta z)), so
// Newton's method on beta, safeguarded by bisection on the sign of the derivative,
// converges to the unique minimiser. Computed in float64 on the input's device.
TemperatureResult fit_temperature(const RawTensor& logits, const RawTensor& labels, const std::string& device);

}  // namespace smoothce
