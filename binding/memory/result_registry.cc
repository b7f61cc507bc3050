#include "memory/result_registry.h"

#include "memory/allocator.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <unordered_set>
#include <vector>

namespace smoothce {
namespace {

struct Tracked {
  std::function<void()> release;
  napi_ref weak = nullptr;
  int64_t bytes = 0;
  bool done = false;
};

// One set per JavaScript thread: each Node environment (main thread, each worker) runs on
// its own thread, and its napi_refs belong to it.
thread_local std::unordered_set<Tracked*>* t_live = nullptr;

std::atomic<bool> g_early{[] {
  const char* e = std::getenv("SMOOTHCE_EARLY_RELEASE");
  return !(e != nullptr && e[0] == '0');
}()};
std::atomic<size_t> g_early_count{0};
std::atomic<size_t> g_forced{0};
std::atomic<bool> g_force{[] {
  const char* e = std::getenv("SMOOTHCE_FORCE_GC");
  return !(e != nullptr && e[0] == '0');
}()};

// Releases t's memory once and forgets it; t itself is deleted by the finalizer.
void finish(napi_env env, Tracked* t) {
  if (t->done) return;
  t->done = true;
  if (t->weak != nullptr) {
    napi_delete_reference(env, t->weak);
    t->weak = nullptr;
    if (t_live != nullptr) t_live->erase(t);
  }
  int64_t ignored = 0;
  napi_adjust_external_memory(env, -t->bytes, &ignored);
  external_bytes_add(-t->bytes);
  std::function<void()> release = std::move(t->release);
  t->release = nullptr;
  if (release) release();
}

}  // namespace

Napi::ArrayBuffer external_result(Napi::Env env, void* data, size_t bytes, std::function<void()> release) {
  auto* t = new Tracked{std::move(release), nullptr, static_cast<int64_t>(bytes), false};
  Napi::ArrayBuffer ab;
  try {
    ab = Napi::ArrayBuffer::New(
        env, data, bytes,
        [](Napi::Env e, void*, Tracked* tr) {
          finish(e, tr);
          delete tr;
        },
        t);
  } catch (...) {
    if (t->release) t->release();
    delete t;
    throw;
  }
  external_bytes_add(t->bytes);
  Napi::MemoryManagement::AdjustExternalMemory(env, t->bytes);
  if (bytes >= kHugeThreshold && g_early.load(std::memory_order_relaxed) &&
      napi_create_reference(env, ab, 0, &t->weak) == napi_ok) {
    if (t_live == nullptr) t_live = new std::unordered_set<Tracked*>();
    t_live->insert(t);
  }
  return ab;
}

namespace {

// Releases the tracked results whose buffers are gone; returns how many.
size_t release_dead(napi_env env) {
  std::vector<Tracked*> dead;
  // Reading a reference makes a local handle to a live buffer; in a scope of their own,
  // those handles end here (left in the caller's scope, they would keep every live buffer
  // from a collection asked for later in the same call).
  napi_handle_scope scope = nullptr;
  const bool scoped = napi_open_handle_scope(env, &scope) == napi_ok;
  for (Tracked* t : *t_live) {
    napi_value v = nullptr;
    if (napi_get_reference_value(env, t->weak, &v) == napi_ok && v == nullptr) dead.push_back(t);
  }
  if (scoped) napi_close_handle_scope(env, scope);
  for (Tracked* t : dead) finish(env, t);
  g_early_count.fetch_add(dead.size(), std::memory_order_relaxed);
  return dead.size();
}

// V8's own collections during a loop that never yields did not clear these weak references
// in practice (20 calls of a 1024x32000 gradient, Node 20: none released), while a full
// collection asked for between two calls did (all but the newest released at once). V8 makes
// a full collection synchronously when the external memory it is told about jumps far past
// its limit, so a spike up and straight back down asks for one. reclaim() does that when it
// finds nothing to release while at least two large results are held (one may be the
// caller's latest). Made from inside the computing call itself, the same spike released
// nothing (observed, Node 20.20), so reclaim() is a call of its own, which lib/ makes just
// before a call with a large output. It is not asked for when the last one took over
// kForceMaxMs (a large JavaScript heap makes full collections slow), nor for kBackoffCalls
// calls after one that freed nothing (the results are really held).
constexpr int64_t kForceSpike = int64_t{1} << 42;
constexpr double kForceMaxMs = 5.0;
constexpr int kBackoffCalls = 16;
thread_local double t_last_force_ms = 0;
thread_local int t_backoff = 0;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void release_collected(Napi::Env env) {
  if (t_live == nullptr || t_live->empty()) return;
  release_dead(env);
}

void reclaim(Napi::Env env) {
  if (t_live == nullptr || t_live->empty() || release_dead(env) > 0) return;
  if (t_live->size() < 2 || !g_force.load(std::memory_order_relaxed) || !g_early.load(std::memory_order_relaxed)) return;
  if (t_backoff > 0) {
    --t_backoff;
    return;
  }
  if (t_last_force_ms > kForceMaxMs) {
    t_backoff = kBackoffCalls;
    t_last_force_ms = 0;
    return;
  }
  const double t0 = now_ms();
  int64_t ignored = 0;
  // Twice: when V8 is already marking (as it usually is, after the last result's report),
  // the first spike only finishes that marking, which kept what was alive when it began.
  for (int i = 0; i < 2; ++i) {
    napi_adjust_external_memory(env, kForceSpike, &ignored);
    napi_adjust_external_memory(env, -kForceSpike, &ignored);
  }
  t_last_force_ms = now_ms() - t0;
  g_forced.fetch_add(1, std::memory_order_relaxed);
  if (release_dead(env) == 0) t_backoff = kBackoffCalls;
}

void set_early_release(bool on) { g_early.store(on); }
bool early_release_enabled() { return g_early.load(); }
size_t tracked_results() { return t_live == nullptr ? 0 : t_live->size(); }
size_t early_releases() { return g_early_count.load(); }
size_t forced_collections() { return g_forced.load(); }

}  // namespace smoothce
