// A small AsyncWorker for native work that returns a value: `work` runs on a libuv
// thread inside run_guarded (the one exception choke point), `done` builds the JS
// value on the JS thread. Rejections carry the translated error class.
#pragma once

#include <napi.h>

#include "errors.h"

#include <functional>
#include <optional>
#include <utility>

namespace smoothce {

template <class R>
class TaskWorker : public Napi::AsyncWorker {
 public:
  TaskWorker(Napi::Env env, const char* name, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> done)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    failure_ = run_guarded([this] { result_.emplace(work_()); });
    if (failure_) SetError(failure_->message);
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(done_(Env(), *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
    result_.reset();
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(to_js_error(Env(), *failure_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<R()> work_;
  std::function<Napi::Value(Napi::Env, R&)> done_;
  std::optional<R> result_;
  std::optional<NativeFailure> failure_;
};

template <class R>
Napi::Promise queue_task(Napi::Env env, const char* name, std::function<R()> work,
                         std::function<Napi::Value(Napi::Env, R&)> done) {
  auto* worker = new TaskWorker<R>(env, name, std::move(work), std::move(done));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace smoothce
