#include "napi/args.h"

#include "errors.h"

#include <cmath>
#include <string>
#include <utility>

namespace smoothce {

namespace {

Napi::Object as_object(Napi::Env env, const Napi::Value& value, const char* op) {
  SMOOTHCE_THROW_TYPE_IF(env, !value.IsObject(), std::string("Expected an argument object for ") + op);
  return value.As<Napi::Object>();
}

}  // namespace

ArgReader::ArgReader(Napi::Env env, const Napi::Value& value, bool async, const char* op, std::vector<HostInput>& holders)
    : env_(env), obj_(as_object(env, value, op)), async_(async), holders_(holders) {
  holders_.reserve(4);
}

RawTensor ArgReader::keep(HostInput&& in) {
  RawTensor raw = in.raw;
  holders_.push_back(std::move(in));
  return raw;
}

RawTensor ArgReader::tensor(const Napi::Value& v, const char* name, Role role) {
  return keep(read_tensor(env_, v, name, role, async_));
}

RawTensor ArgReader::optional_tensor(const Napi::Value& v, const char* name, Role role) {
  if (v.IsNull() || v.IsUndefined()) return RawTensor{};
  return tensor(v, name, role);
}

void ArgReader::revalidate_all() const {
  for (const HostInput& h : holders_) revalidate(env_, h);
}

int64_t read_reduction(Napi::Env env, const Napi::Value& r) {
  SMOOTHCE_THROW_TYPE_IF(env, !r.IsNumber(), "Expected a number for reduction (0 none, 1 mean, 2 sum)");
  const double red = r.As<Napi::Number>().DoubleValue();
  SMOOTHCE_THROW_RANGE_IF(env, red != 0 && red != 1 && red != 2, "reduction must be 0 (none), 1 (mean) or 2 (sum)");
  return static_cast<int64_t>(red);
}

int64_t read_ignore_index(Napi::Env env, const Napi::Value& ii) {
  if (ii.IsBigInt()) {
    bool lossless = false;
    const int64_t v = ii.As<Napi::BigInt>().Int64Value(&lossless);
    SMOOTHCE_THROW_RANGE_IF(env, !lossless, "ignoreIndex does not fit in int64");
    return v;
  }
  SMOOTHCE_THROW_TYPE_IF(env, !ii.IsNumber(), "Expected a bigint or number for ignoreIndex");
  const double d = ii.As<Napi::Number>().DoubleValue();
  // Range first: casting NaN, Infinity or values past 2^63 to int64 is undefined behaviour.
  SMOOTHCE_THROW_RANGE_IF(env, !(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::floor(d),
                          "ignoreIndex must be an integer");
  return static_cast<int64_t>(d);
}

double read_label_smoothing(Napi::Env env, const Napi::Value& ls) {
  SMOOTHCE_THROW_TYPE_IF(env, !ls.IsNumber(), "Expected a number for labelSmoothing");
  const double eps = ls.As<Napi::Number>().DoubleValue();
  SMOOTHCE_THROW_RANGE_IF(env, !(eps >= 0.0 && eps <= 1.0), "labelSmoothing must be in [0, 1]");
  return eps;
}

std::string read_device(const Napi::Value& v, std::string fallback) {
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::move(fallback);
}

RawTensor read_grad_output(ArgReader& r, double& scalar) {
  Napi::Value g = r.get(Prop::GradOutput);
  if (g.IsNumber()) {
    scalar = g.As<Napi::Number>().DoubleValue();
    return RawTensor{};
  }
  return r.optional_tensor(g, "gradOutput", Role::GradOutput);
}

void read_loss_options(ArgReader& r, CrossEntropyArgs& a) {
  Napi::Env env = r.env();
  a.weight = r.optional_tensor(Prop::Weight, "weight", Role::Weight);
  a.grad_output = read_grad_output(r, a.grad_output_scalar);
  a.reduction = read_reduction(env, r.get(Prop::Reduction));
  a.ignore_index = read_ignore_index(env, r.get(Prop::IgnoreIndex));
  a.label_smoothing = read_label_smoothing(env, r.get(Prop::LabelSmoothing));
  a.want_grad = r.get(Prop::Grad).ToBoolean().Value();
  a.grad_on_device = a.want_grad && r.get(Prop::GradOnDevice).ToBoolean().Value();
  a.device = read_device(r.get(Prop::Device), a.device);
}

}  // namespace smoothce
