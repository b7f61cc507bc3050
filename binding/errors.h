// The one choke point where C++ exceptions become JavaScript errors.
//
// Native work (on the main thread for sync calls, on a libuv thread for async ones)
// runs inside run_guarded(), which classifies any exception into a NativeFailure
// without touching N-API. The JS thread then turns that into an Error with
// to_js_error(). Classification:
//   c10::IndexError, c10::ValueError -> RangeError   (what_without_backtrace())
//   c10::TypeError                   -> TypeError
//   other c10::Error                 -> Error        (what_without_backtrace(), never the backtrace)
//   std::bad_alloc                   -> RangeError   ("out of memory ...")
//   std::exception / anything else   -> Error
#pragma once

#include <napi.h>

#include <c10/util/Exception.h>

#include <exception>
#include <new>
#include <optional>
#include <string>
#include <utility>

namespace smoothce {

struct NativeFailure {
  enum class Kind { Error, TypeError, RangeError };
  Kind kind = Kind::Error;
  std::string message;
};

template <class F>
std::optional<NativeFailure> run_guarded(F&& fn) noexcept {
  using K = NativeFailure::Kind;
  try {
    std::forward<F>(fn)();
    return std::nullopt;
  } catch (const c10::IndexError& e) {
    return NativeFailure{K::RangeError, e.what_without_backtrace()};
  } catch (const c10::ValueError& e) {
    return NativeFailure{K::RangeError, e.what_without_backtrace()};
  } catch (const c10::TypeError& e) {
    return NativeFailure{K::TypeError, e.what_without_backtrace()};
  } catch (const c10::Error& e) {
    return NativeFailure{K::Error, e.what_without_backtrace()};
  } catch (const std::bad_alloc&) {
    return NativeFailure{K::RangeError, "out of memory while computing the loss (std::bad_alloc)"};
  } catch (const std::exception& e) {
    return NativeFailure{K::Error, e.what()};
  } catch (...) {
    return NativeFailure{K::Error, "unknown native exception"};
  }
}

inline Napi::Error to_js_error(Napi::Env env, const NativeFailure& f) {
  Napi::Error err;
  switch (f.kind) {
    case NativeFailure::Kind::RangeError: err = Napi::RangeError::New(env, f.message); break;
    case NativeFailure::Kind::TypeError: err = Napi::TypeError::New(env, f.message); break;
    default: err = Napi::Error::New(env, f.message); break;
  }
  err.Set("code", Napi::String::New(env, "ERR_SMOOTHCE_NATIVE"));
  return err;
}

// Runs fn on the JS thread and throws the translated error there.
template <class F>
void run_or_throw(Napi::Env env, F&& fn) {
  if (auto failure = run_guarded(std::forward<F>(fn))) throw to_js_error(env, *failure);
}

// Argument checks in the marshalling layer (defence in depth behind the TypeScript
// validation): a TypeError / RangeError naming the parameter, with the code the TypeScript
// checks give (lib/errors.ts: ERR_SMOOTHCE_INVALID_ARG_TYPE / ERR_SMOOTHCE_INVALID_ARG_VALUE).
inline Napi::Error coded(Napi::Error err, const char* code) {
  err.Set("code", Napi::String::New(err.Env(), code));
  return err;
}
inline Napi::Error type_error(Napi::Env env, const std::string& msg) {
  return coded(Napi::TypeError::New(env, msg), "ERR_SMOOTHCE_INVALID_ARG_TYPE");
}
inline Napi::Error range_error(Napi::Env env, const std::string& msg) {
  return coded(Napi::RangeError::New(env, msg), "ERR_SMOOTHCE_INVALID_ARG_VALUE");
}
#define SMOOTHCE_THROW_TYPE_IF(env, cond, msg)      \
  do {                                              \
    if (cond) throw ::smoothce::type_error(env, msg); \
  } while (0)
#define SMOOTHCE_THROW_RANGE_IF(env, cond, msg)      \
  do {                                               \
    if (cond) throw ::smoothce::range_error(env, msg); \
  } while (0)

}  // namespace smoothce
