#include "memory/result_registry.h"

#include "memory/allocator.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace smoothce {
namespace {

// Who may touch what. The weak reference (napi_ref) belongs to the JavaScript thread that made
// the result and is only ever used there: by release_dead() during a call, or by the env's
// cleanup hook when the environment goes away, which deletes every weak reference still held
// (before the engine tears its handles down). A buffer's finalizer never touches it: Deno runs
// external ArrayBuffer finalizers on a V8 background thread (its backing-store deleter), and
// every runtime may run them during teardown, where deleting a reference from there crashed
// Deno 2.9 ("Check failed: node->IsInUse()", "attempt to use Handle in an Isolate that is not
// its host"). The finalizer only frees the memory, once (the `done` flag decides between it and
// release_dead), and tells V8 about the freed bytes only when it runs on the owning thread
// before teardown; otherwise the owner does at its next call (pending_external).
struct Registry;

struct Tracked {
  std::function<void()> release;
  std::shared_ptr<Registry> owner;
  napi_ref weak = nullptr;  // owner thread only
  int64_t bytes = 0;
  std::atomic<bool> done{false};
};

// One per JavaScript thread (each Node environment, main thread or worker, runs on its own
// thread, and its napi_refs belong to it). Shared with the results' finalizers, which may
// outlive the thread's use of it.
struct Registry {
  std::thread::id thread = std::this_thread::get_id();
  std::vector<std::shared_ptr<Tracked>> live;  // owner thread only
  std::atomic<int64_t> pending_external{0};    // bytes freed off-thread, not yet reported to V8
  std::atomic<bool> torn_down{false};
  napi_env env = nullptr;  // set with the cleanup hook
  bool hooked = false;
};

thread_local std::shared_ptr<Registry> t_reg;

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

bool on_owner_thread(const Registry& r) {
  return std::this_thread::get_id() == r.thread && !r.torn_down.load(std::memory_order_acquire);
}

// Frees t's memory, exactly once whichever of the finalizer and release_dead() comes first.
// `report` says whether this thread may tell V8 (the owner's, before teardown).
void release_once(napi_env env, Tracked& t, bool report) {
  if (t.done.exchange(true, std::memory_order_acq_rel)) return;
  if (report) {
    int64_t ignored = 0;
    napi_adjust_external_memory(env, -t.bytes, &ignored);
  } else if (t.owner) {
    t.owner->pending_external.fetch_add(t.bytes, std::memory_order_relaxed);
  }
  external_bytes_add(-t.bytes);
  std::function<void()> release = std::move(t.release);
  t.release = nullptr;
  if (release) release();
}

// Reports to V8 the bytes that finalizers on other threads freed (owner thread only).
void report_pending(napi_env env, Registry& r) {
  const int64_t freed = r.pending_external.exchange(0, std::memory_order_relaxed);
  if (freed != 0) {
    int64_t ignored = 0;
    napi_adjust_external_memory(env, -freed, &ignored);
  }
}

// The environment is going away: delete every weak reference while the engine still has its
// handles, and forget the results (their finalizers, if they still run, only free memory).
void on_env_teardown(void* arg) {
  auto* holder = static_cast<std::shared_ptr<Registry>*>(arg);
  std::shared_ptr<Registry> reg = std::move(*holder);
  delete holder;
  reg->torn_down.store(true, std::memory_order_release);
  for (const std::shared_ptr<Tracked>& t : reg->live) {
    if (t->weak != nullptr) napi_delete_reference(reg->env, t->weak);
    t->weak = nullptr;
  }
  reg->live.clear();
  if (t_reg == reg) t_reg.reset();
}

// Registers the teardown hook once per environment; early release (weak references) is used
// only where it is registered.
bool hooked(napi_env env) {
  Registry& r = *t_reg;
  if (r.hooked) return !r.torn_down.load(std::memory_order_acquire);
  auto* arg = new std::shared_ptr<Registry>(t_reg);
  if (napi_add_env_cleanup_hook(env, on_env_teardown, arg) != napi_ok) {
    delete arg;
    return false;
  }
  r.env = env;
  r.hooked = true;
  return true;
}

}  // namespace

Napi::ArrayBuffer external_result(Napi::Env env, void* data, size_t bytes, std::function<void()> release) {
  if (!t_reg) t_reg = std::make_shared<Registry>();
  auto t = std::make_shared<Tracked>();
  t->release = std::move(release);
  t->owner = t_reg;
  t->bytes = static_cast<int64_t>(bytes);
  // The finalizer's own share of t, freed by the finalizer (or never, if the engine never runs it).
  auto* hint = new std::shared_ptr<Tracked>(t);
  Napi::ArrayBuffer ab;
  try {
    ab = Napi::ArrayBuffer::New(
        env, data, bytes,
        [](Napi::Env e, void*, std::shared_ptr<Tracked>* share) {
          std::shared_ptr<Tracked> tr = std::move(*share);
          delete share;
          release_once(e, *tr, tr->owner && on_owner_thread(*tr->owner));
        },
        hint);
  } catch (...) {
    delete hint;
    release_once(env, *t, false);
    throw;
  }
  external_bytes_add(t->bytes);
  Napi::MemoryManagement::AdjustExternalMemory(env, t->bytes);
  if (bytes >= kHugeThreshold && g_early.load(std::memory_order_relaxed) && hooked(env)) {
    if (napi_create_reference(env, ab, 0, &t->weak) == napi_ok) t_reg->live.push_back(std::move(t));
  }
  return ab;
}

namespace {

// Releases the tracked results whose buffers are gone, and forgets those whose finalizer has
// already freed them; returns how many were released here.
size_t release_dead(napi_env env) {
  Registry& r = *t_reg;
  report_pending(env, r);
  size_t released = 0;
  // Reading a reference makes a local handle to a live buffer; in a scope of their own,
  // those handles end here (left in the caller's scope, they would keep every live buffer
  // from a collection asked for later in the same call).
  napi_handle_scope scope = nullptr;
  const bool scoped = napi_open_handle_scope(env, &scope) == napi_ok;
  std::vector<std::shared_ptr<Tracked>> keep;
  keep.reserve(r.live.size());
  for (std::shared_ptr<Tracked>& t : r.live) {
    bool gone = t->done.load(std::memory_order_acquire);
    if (!gone) {
      napi_value v = nullptr;
      if (napi_get_reference_value(env, t->weak, &v) == napi_ok && v == nullptr) {
        release_once(env, *t, true);
        ++released;
        gone = true;
      }
    }
    if (gone) {
      napi_delete_reference(env, t->weak);
      t->weak = nullptr;
    } else {
      keep.push_back(std::move(t));
    }
  }
  if (scoped) napi_close_handle_scope(env, scope);
  r.live.swap(keep);
  g_early_count.fetch_add(released, std::memory_order_relaxed);
  return released;
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
  if (!t_reg || t_reg->live.empty()) return;
  release_dead(env);
}

void reclaim(Napi::Env env) {
  if (!t_reg || t_reg->live.empty() || release_dead(env) > 0) return;
  if (t_reg->live.size() < 2 || !g_force.load(std::memory_order_relaxed) || !g_early.load(std::memory_order_relaxed)) return;
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
size_t tracked_results() {
  if (!t_reg) return 0;
  size_t n = 0;
  for (const std::shared_ptr<Tracked>& t : t_reg->live) n += t->done.load(std::memory_order_relaxed) ? 0 : 1;
  return n;
}
size_t early_releases() { return g_early_count.load(); }
size_t forced_collections() { return g_forced.load(); }

}  // namespace smoothce
