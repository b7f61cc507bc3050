// N-API marshalling for calibration scoring: reads { scores, labels, ... } objects,
// calls the pure ATen layer (calibration.h) through run_or_throw, and returns plain
// objects whose per-bin arrays are float64 tensors ({ data, shape, dtype }).
#include <napi.h>

#include "napi/async_task.h"
#include "aten/calibration.h"
#include "errors.h"
#include "napi/modules.h"
#include "napi/tensor_view.h"

#include <memory>
#include <string>

namespace smoothce {
namespace {

double number_or(Napi::Env env, const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  SMOOTHCE_THROW_TYPE_IF(env, !v.IsNumber(), std::string("Expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

std::string string_or(const Napi::Object& o, const char* key, const char* fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(fallback);
}

void check_labels_dtype(Napi::Env env, const RawTensor& labels) {
  SMOOTHCE_THROW_TYPE_IF(env, labels.storage != at::kLong && labels.storage != at::kInt,
                         "Expected an int32 or int64 tensor for labels");
}

Napi::Object sums_to_js(Napi::Env env, const BinSums& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("edges", tensor_to_js(env, s.edges));
  o.Set("count", tensor_to_js(env, s.count));
  o.Set("confSum", tensor_to_js(env, s.conf_sum));
  o.Set("accSum", tensor_to_js(env, s.acc_sum));
  return o;
}

Napi::Object stats_to_js(Napi::Env env, const CalibrationStats& st) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("n", Napi::Number::New(env, static_cast<double>(st.n)));
  out.Set("classes", Napi::Number::New(env, static_cast<double>(st.classes)));
  out.Set("correct", Napi::Number::New(env, st.correct));
  out.Set("nllSum", Napi::Number::New(env, st.nll_sum));
  out.Set("brierSum", Napi::Number::New(env, st.brier_sum));
  out.Set("nllClamped", Napi::Number::New(env, static_cast<double>(st.nll_clamped)));
  out.Set("top", sums_to_js(env, st.top));
  if (st.classwise.count.defined()) out.Set("classwise", sums_to_js(env, st.classwise));
  if (st.adaptive.count.defined()) out.Set("adaptive", sums_to_js(env, st.adaptive));
  if (st.row_conf.defined()) {
    Napi::Object rows = Napi::Object::New(env);
    rows.Set("confidence", tensor_to_js(env, st.row_conf));
    rows.Set("correct", tensor_to_js(env, st.row_correct));
    rows.Set("predicted", tensor_to_js(env, st.row_pred));
    rows.Set("order", tensor_to_js(env, st.row_order));
    if (st.row_nml.defined()) rows.Set("normalizedMaxLogit", tensor_to_js(env, st.row_nml));
    if (st.row_order_nml.defined()) rows.Set("orderNormalized", tensor_to_js(env, st.row_order_nml));
    out.Set("rows", rows);
  }
  return out;
}

Napi::Object fit_to_js(Napi::Env env, const TemperatureResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("temperature", Napi::Number::New(env, r.temperature));
  out.Set("nllBefore", Napi::Number::New(env, r.nll_before));
  out.Set("nllAfter", Napi::Number::New(env, r.nll_after));
  out.Set("iterations", Napi::Number::New(env, static_cast<double>(r.iterations)));
  out.Set("atBound", Napi::Boolean::New(env, r.at_bound));
  return out;
}

// What an async call keeps alive until it settles: the arguments and the HostInputs
// (pins of SharedArrayBuffer-backed views, or snapshot copies of ordinary ArrayBuffers).
struct StatsCall {
  CalibrationArgs args;
  HostInput scores, labels;
};
struct FitCall {
  HostInput logits, labels;
  std::string device;
};

// calibrationStats(args, async): async (second argument true) returns a Promise and runs
// calibration_stats, the same function the sync form runs, on a libuv pool thread.
Napi::Value CalibrationStatsEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsObject(),
                         "Expected an argument object for calibrationStats");
  const bool async = info.Length() > 1 && info[1].ToBoolean().Value();
  Napi::Object o = info[0].As<Napi::Object>();
  const std::string name = string_or(o, "scoresName", "scores");
  HostInput scores = read_tensor(env, o.Get("scores"), name.c_str(), Role::Input, async);
  HostInput labels = read_tensor(env, o.Get("labels"), "labels", Role::Target, async);
  check_labels_dtype(env, labels.raw);

  CalibrationArgs a;
  a.scores = scores.raw;
  a.labels = labels.raw;
  a.from_logits = o.Get("fromLogits").ToBoolean().Value();
  a.temperature = number_or(env, o, "temperature", 1.0);
  const double bins = number_or(env, o, "bins", 15);
  SMOOTHCE_THROW_RANGE_IF(env, !(bins >= 1 && bins <= 1e6) || bins != static_cast<double>(static_cast<int64_t>(bins)),
                          "Expected an integer in [1, 1000000] for bins but received " + std::to_string(bins));
  a.bins = static_cast<int64_t>(bins);
  const double conv = number_or(env, o, "convention", 0);
  SMOOTHCE_THROW_RANGE_IF(env, conv != 0 && conv != 1 && conv != 2, "convention must be 0 (guo), 1 (torchmetrics) or 2 (netcal)");
  a.convention = static_cast<Convention>(static_cast<int64_t>(conv));
  a.classwise = o.Get("classwise").ToBoolean().Value();
  a.adaptive = o.Get("adaptive").ToBoolean().Value();
  a.rows = o.Get("rows").ToBoolean().Value();
  a.sum_tolerance = number_or(env, o, "tolerance", 1e-3);
  a.device = string_or(o, "device", "cpu");
  a.scores_name = string_or(o, "scoresName", "scores");

  // Getters run by the Gets above may have detached a buffer read earlier.
  revalidate(env, scores);
  revalidate(env, labels);
  if (async) {
    auto call = std::make_shared<StatsCall>(StatsCall{a, std::move(scores), std::move(labels)});
    return queue_task<CalibrationStats>(
        env, "smoothce:calibrationStats",
        [call] {
          enter_worker_thread();  // runs on a libuv thread: ATen only, no N-API
          return calibration_stats(call->args);
        },
        [call](Napi::Env e, CalibrationStats& st) -> Napi::Value { return stats_to_js(e, st); });
  }
  CalibrationStats st;
  run_or_throw(env, [&] { st = calibration_stats(a); });
  return stats_to_js(env, st);
}

Napi::Value FitTemperatureEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SMOOTHCE_THROW_TYPE_IF(env, info.Length() < 1 || !info[0].IsObject(),
                         "Expected an argument object for calibrationFitTemperature");
  const bool async = info.Length() > 1 && info[1].ToBoolean().Value();
  Napi::Object o = info[0].As<Napi::Object>();
  HostInput logits = read_tensor(env, o.Get("logits"), "logits", Role::Input, async);
  HostInput labels = read_tensor(env, o.Get("labels"), "labels", Role::Target, async);
  check_labels_dtype(env, labels.raw);
  const std::string device = string_or(o, "device", "cpu");
  TemperatureResult r;
  // Getters run by the Gets above may have detached a buffer read earlier.
  revalidate(env, logits);
  revalidate(env, labels);
  if (async) {
    auto call = std::make_shared<FitCall>(FitCall{std::move(logits), std::move(labels), device});
    return queue_task<TemperatureResult>(
        env, "smoothce:calibrationFitTemperature",
        [call] {
          enter_worker_thread();
          return fit_temperature(call->logits.raw, call->labels.raw, call->device);
        },
        [](Napi::Env e, TemperatureResult& res) -> Napi::Value { return fit_to_js(e, res); });
  }
  run_or_throw(env, [&] { r = fit_temperature(logits.raw, labels.raw, device); });
  return fit_to_js(env, r);
}

}  // namespace

void InitCalibration(Napi::Env env, Napi::Object exports) {
  exports.Set("calibrationStats", Napi::Function::New(env, CalibrationStatsEntry, "calibrationStats"));
  exports.Set("calibrationFitTemperature", Napi::Function::New(env, FitTemperatureEntry, "calibrationFitTemperature"));
}

}  // namespace smoothce
