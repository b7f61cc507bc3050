#include "memory/allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include <condition_variable>
#include <functional>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

namespace smoothce {
namespace {

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// A large buffer's mapping: whole base pages, not whole huge pages. Its last partial 2 MiB
// then faults in base pages, so that a 125 MiB gradient (1024x32000 float32) adds 125 MiB
// to the RSS, not the 126 MiB of 63 huge pages.
size_t mapped_length(size_t bytes) {
  static const size_t page = [] {
    const long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<size_t>(v) : size_t(4096);
  }();
  return round_up(bytes, page);
}

// A small cache of freed large mappings, reused by size: a training loop that drops last
// step's gradient before asking for the next one then faults no pages at all. Bounded by
// SMOOTHCE_HUGE_CACHE_MB (default 512; 0 disables) and kCacheSlots mappings. Eight slots:
// an ATen forward+gradient call frees three or four N x C temporaries of one size (and a
// few of other sizes) besides the fused path's outputs.
constexpr int kCacheSlots = 8;
struct Cache {
  std::mutex mu;
  void* ptr[kCacheSlots] = {};
  size_t len[kCacheSlots] = {};
  uint64_t age[kCacheSlots] = {};  // when each entry was put (c.clock)
  uint64_t clock = 0;
  size_t total = 0;
  size_t limit = 0;
  Cache() {
    const char* env = std::getenv("SMOOTHCE_HUGE_CACHE_MB");
    const long mb = env ? std::strtol(env, nullptr, 10) : 512;
    limit = mb > 0 ? static_cast<size_t>(mb) << 20 : 0;
  }
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: frees may come during exit
  return *c;
}

void* cache_take(size_t len) {
  Cache& c = cache();
  if (c.limit == 0) return nullptr;
  std::lock_guard<std::mutex> lock(c.mu);
  int best = -1;  // the most recently freed block of that length (likeliest still in cache)
  for (int i = 0; i < kCacheSlots; ++i)
    if (c.ptr[i] != nullptr && c.len[i] == len && (best < 0 || c.age[i] > c.age[best])) best = i;
  if (best < 0) return nullptr;
  void* p = c.ptr[best];
  c.ptr[best] = nullptr;
  c.total -= len;
  return p;
}

bool cache_put(void* p, size_t len) {
  Cache& c = cache();
  if (c.limit == 0 || len > c.limit) return false;
  std::lock_guard<std::mutex> lock(c.mu);
  // Make room, oldest entries first: the byte limit, and a slot (a process whose sizes change
  // keeps its latest ones, not the first eight it ever freed).
  auto oldest = [&] {
    int o = -1;
    for (int i = 0; i < kCacheSlots; ++i)
      if (c.ptr[i] != nullptr && (o < 0 || c.age[i] < c.age[o])) o = i;
    return o;
  };
  auto drop = [&](int i) {
    munmap(c.ptr[i], c.len[i]);
    c.total -= c.len[i];
    c.ptr[i] = nullptr;
  };
  while (c.total + len > c.limit) drop(oldest());
  int slot = -1;
  for (int i = 0; i < kCacheSlots && slot < 0; ++i)
    if (c.ptr[i] == nullptr) slot = i;
  if (slot < 0) drop(slot = oldest());
  c.ptr[slot] = p;
  c.len[slot] = len;
  c.age[slot] = ++c.clock;
  c.total += len;
  return true;
}

}  // namespace

namespace {
std::atomic<int64_t> g_external_bytes{0};

// SMOOTHCE_EXTERNAL_CAP_MB in bytes, or -1 when it is not set (the default rule applies).
int64_t external_cap_env() {
  static const int64_t cap = [] {
    if (const char* env = std::getenv("SMOOTHCE_EXTERNAL_CAP_MB")) {
      char* end = nullptr;
      const long long v = std::strtoll(env, &end, 10);
      if (end != env && v >= 0) return static_cast<int64_t>(v) << 20;
    }
    return int64_t{-1};
  }();
  return cap;
}

// The default: 512 MiB, but no more than four buffers of the size being asked for
// (and no less than 64 MiB). More unfinalized buffers of one size than the cache can take
// back are fresh mappings that are only ever unmapped; past the limit a V8-owned buffer
// at least lets V8 see the memory and collect it, and glibc reuse it (up to its 32 MiB
// mmap threshold). A synchronous loop of 4096x1000 float32 gradients (16 MB): 16.8 ms
// a call and 800 MB RSS with a flat 512 MiB, 5.7 ms and 370 MB with 64 MiB.
int64_t external_limit(size_t bytes) {
  const int64_t env = external_cap_env();
  if (env >= 0) return env;
  const int64_t per_size = int64_t{4} * static_cast<int64_t>(bytes);
  return std::min<int64_t>(int64_t{512} << 20, std::max<int64_t>(int64_t{64} << 20, per_size));
}
}  // namespace

void external_bytes_add(int64_t bytes) { g_external_bytes.fetch_add(bytes, std::memory_order_relaxed); }

int64_t external_bytes_outstanding() { return g_external_bytes.load(std::memory_order_relaxed); }

bool external_allowed(size_t bytes) {
  const int64_t now = g_external_bytes.load(std::memory_order_relaxed);
  return now == 0 || now + static_cast<int64_t>(bytes) <= external_limit(bytes);
}

// Whether fresh mappings are advised with MADV_HUGEPAGE (SMOOTHCE_HUGE_ADVICE=1); by default
// they are not. This VM reports free 8 MiB blocks to the host (page_reporting_order=11 on
// the kernel command line), which takes their memory back; a 2 MiB page is cut from such a
// block, so a fresh huge page usually has to be faulted in by the host again, while base
// pages come from smaller, still-backed free blocks. 125 MiB written once, one process
// each: 4 KiB pages 51-75 ms quiet (190-450 ms under load 20), advised 11-12 ms when the
// pages had just been freed, 150-280 ms quiet and 1.3-1.7 s under load when not. First
// 1024x32000 forward+gradient calls of a fresh process, load 13-21 (2026-12-02): aten
// 0.87-3.6 s advised, 0.69-1.15 s not; fused 0.21-1.05 s and 0.26-0.40 s. Reused blocks (the cache) fault
// nothing either way; V8-owned outputs past the external cap are still advised
// (advise_huge), since their memory is recycled by the kernel while it is still backed.
bool huge_advice_enabled() {
  const char* env = std::getenv("SMOOTHCE_HUGE_ADVICE");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

// Fresh mappings of at least kPrefaultMin bytes are faulted in before they are handed out,
// by MADV_POPULATE_WRITE (Linux 5.14+; elsewhere nothing happens) split between up to
// kPrefaultThreads threads, the calling one included. The caller is about to write every
// byte anyway (an output, a snapshot): faulting 125 MiB in as it writes cost 63 ms on one
// thread here, MADV_POPULATE_WRITE 43 ms on one thread and 23 ms on two, so a first
// 1024x32000 forward+gradient call takes the kernel's time plus about 23 ms instead of
// plus 63. SMOOTHCE_PREFAULT=0 turns it off. These threads are memory work done while the
// caller waits (often the JS thread), so they use the machine's cores, not ATen's thread count.
constexpr size_t kPrefaultMin = size_t(8) << 20;
constexpr size_t kPrefaultPiece = size_t(4) << 20;  // handed out from a shared counter
constexpr unsigned kPrefaultThreads = 4;
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

std::atomic<bool> g_populate_unsupported{false};

bool prefault_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("SMOOTHCE_PREFAULT");
    return !(e != nullptr && e[0] == '0');
  }();
  return on;
}

void populate(void* p, size_t len) {
  if (len == 0 || g_populate_unsupported.load(std::memory_order_relaxed)) return;
  if (madvise(p, len, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) g_populate_unsupported.store(true);
}

// Helper threads for memory work done while a caller waits (faulting in, copying into fresh
// memory): started once, parked on a condition variable between jobs. A thread started for
// the job instead began 2-3 ms late on the 2-vCPU VM, a sixth of a 64 MiB snapshot's time.
// One job at a time; a caller that finds the helpers busy does its job alone.
class CoreHelpers {
 public:
  static CoreHelpers& get() {
    static CoreHelpers* h = new CoreHelpers();  // never destroyed: parked threads outlive exit
    return *h;
  }
  // Runs piece(i) for every i in [0, pieces), on this thread and the helpers.
  void run(size_t pieces, const std::function<void(size_t)>& piece) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock() || helpers_ == 0 || pieces < 2) {
      for (size_t i = 0; i < pieces; ++i) piece(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &piece;
      pieces_ = pieces;
      next_.store(0);
      running_ = helpers_;
      ++generation_;
    }
    cv_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return running_ == 0; });
    job_ = nullptr;
  }
  void start() {
    std::call_once(started_, [this] {
      const unsigned want = std::max(1u, std::min(std::thread::hardware_concurrency(), kPrefaultThreads)) - 1;
      for (unsigned i = 0; i < want; ++i) {
        try {
          std::thread([this] { loop(); }).detach();
          ++helpers_;
        } catch (...) {
          break;
        }
      }
    });
  }

 private:
  void drain() {
    for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < pieces_;) (*job_)(i);
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
      }
      drain();
      std::lock_guard<std::mutex> lock(mu_);
      if (--running_ == 0) done_cv_.notify_one();
    }
  }
  std::once_flag started_;
  std::mutex run_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(size_t)>* job_ = nullptr;
  size_t pieces_ = 0;
  std::atomic<size_t> next_{0};
  unsigned helpers_ = 0, running_ = 0;
  uint64_t generation_ = 0;
};

template <class F>
void run_on_cores(size_t pieces, const F& piece) {
  CoreHelpers& h = CoreHelpers::get();
  h.start();
  h.run(pieces, std::function<void(size_t)>(piece));
}

void prefault(void* p, size_t len) {
  if (len < kPrefaultMin || !prefault_enabled() || g_populate_unsupported.load(std::memory_order_relaxed)) return;
  const size_t pieces = (len + kPrefaultPiece - 1) / kPrefaultPiece;
  run_on_cores(pieces, [&](size_t i) {
    const size_t from = i * kPrefaultPiece;
    populate(static_cast<char*>(p) + from, std::min(kPrefaultPiece, len - from));
  });
}

void fault_in(void* p, size_t bytes) {
  // Whole pages inside [p, p + bytes) only: MADV_POPULATE_WRITE wants a page-aligned start.
  static const size_t page = [] {
    const long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<size_t>(v) : size_t(4096);
  }();
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) / page * page;
  if (e > b) prefault(reinterpret_cast<void*>(b), e - b);
}

void start_core_helpers() { CoreHelpers::get().start(); }

void copy_into_fresh(void* dst, const void* src, size_t bytes) {
  if (bytes < kPrefaultMin) {
    std::memcpy(dst, src, bytes);
    return;
  }
  // Each piece is faulted in (unless it came from the cache: already resident) and copied by
  // the same thread, while the other threads do the same with theirs.
  const size_t pieces = (bytes + kPrefaultPiece - 1) / kPrefaultPiece;
  run_on_cores(pieces, [&](size_t i) {
    const size_t from = i * kPrefaultPiece, n = std::min(kPrefaultPiece, bytes - from);
    if (prefault_enabled()) populate(static_cast<char*>(dst) + from, n);
    std::memcpy(static_cast<char*>(dst) + from, static_cast<const char*>(src) + from, n);
  });
}

void* huge_alloc(size_t bytes) {
  return huge_alloc(bytes, true);
}

void* huge_alloc(size_t bytes, bool fault_in) {
  if (bytes < kHugeThreshold) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, bytes == 0 ? 64 : round_up(bytes, 64)) != 0 || p == nullptr) throw std::bad_alloc();
    return p;
  }
  const size_t len = mapped_length(bytes);
  if (void* hit = cache_take(len)) return hit;
  // Over-map by one huge page, then trim to a range that starts 2 MiB-aligned.
  const size_t map_len = len + kHugePage;
  void* raw = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = round_up(base, kHugePage);
  if (aligned > base) munmap(raw, aligned - base);
  const uintptr_t end = base + map_len;
  if (end > aligned + len) munmap(reinterpret_cast<void*>(aligned + len), end - (aligned + len));
#ifdef MADV_HUGEPAGE
  if (huge_advice_enabled()) madvise(reinterpret_cast<void*>(aligned), len, MADV_HUGEPAGE);  // advisory: failure is harmless
#endif
  if (fault_in) prefault(reinterpret_cast<void*>(aligned), len);
  return reinterpret_cast<void*>(aligned);
}

void advise_huge(void* p, size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  const uintptr_t b = round_up(reinterpret_cast<uintptr_t>(p), kHugePage);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) / kHugePage * kHugePage;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
#endif
}

void huge_free(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes < kHugeThreshold) {
    std::free(p);
    return;
  }
  const size_t len = mapped_length(bytes);
  if (!cache_put(p, len)) munmap(p, len);
}

namespace {

// ATen's large blocks (allocate() below) carry their own address as the DataPtr's context,
// as c10's default CPU allocator does, so that raw_deleter() can be a plain function and
// Allocator::raw_allocate / raw_deallocate work on them too. Their sizes are kept here.
std::mutex g_block_mu;
// Where a block's mapping starts and how long it is (the block starts kColourSpan or less in).
struct BlockInfo {
  void* base = nullptr;
  size_t mapped = 0;
};
constexpr size_t kColourSpan = 4096;
std::unordered_map<void*, BlockInfo>& blocks() {
  static auto* m = new std::unordered_map<void*, BlockInfo>();  // never destroyed: frees may come during exit
  return *m;
}
// The raw deleter of the allocator that was installed before ours (c10's free_cpu for the
// default one), for the small blocks it served.
std::atomic<c10::DeleterFnPtr> g_fallback_raw_deleter{nullptr};

// Frees a large block of ours; false when `p` is not one.
bool free_block(void* p) {
  BlockInfo b;
  {
    std::lock_guard<std::mutex> lock(g_block_mu);
    auto it = blocks().find(p);
    if (it == blocks().end()) return false;
    b = it->second;
    blocks().erase(it);
  }
  huge_free(b.base, b.mapped);
  return true;
}

void delete_block(void* p) { free_block(p); }

// raw_deleter(): frees a pointer that either allocator returned through raw_allocate.
void delete_any(void* p) {
  if (p == nullptr || free_block(p)) return;
  if (c10::DeleterFnPtr d = g_fallback_raw_deleter.load()) d(p);
}

c10::DataPtr make_block_data_ptr(size_t bytes) {
  // Each block starts at its own offset into its mapping ("colour"): blocks that all began
  // on a 2 MiB boundary alias each other modulo 4 KiB, and a kernel that reads one while
  // writing another (log_softmax's input and output, its backward's three tensors) then
  // stalls on false store-to-load dependencies. 4096x1000 float32 forward, 1 thread: 6.0 ms
  // with every block 2 MiB-aligned, 4.7 ms with these offsets.
  static std::atomic<uint32_t> next_colour{0};
  const size_t colour = (static_cast<size_t>(next_colour.fetch_add(1, std::memory_order_relaxed)) * 1088) % 4096 / 64 * 64;
  const size_t mapped = bytes + kColourSpan;
  char* base = static_cast<char*>(huge_alloc(mapped));
  void* p = base + colour;
  try {
    std::lock_guard<std::mutex> lock(g_block_mu);
    blocks().emplace(p, BlockInfo{base, mapped});
  } catch (...) {
    huge_free(base, mapped);
    throw;
  }
  return c10::DataPtr(p, p, &delete_block, c10::Device(c10::DeviceType::CPU));
}

class HugePageCPUAllocator final : public c10::Allocator {
 public:
  explicit HugePageCPUAllocator(c10::Allocator* fallback) : fallback_(fallback) {}
  // LibTorch 1.x declares allocate() const; 2.x declares it non-const and adds a pure
  // copy_data(). Both forms are declared, without `override`, so that whichever one this
  // LibTorch's c10::Allocator has is the one overridden.
  c10::DataPtr allocate(size_t n) const { return allocate_any(n); }
  c10::DataPtr allocate(size_t n) { return allocate_any(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }
  // Non-null exactly when the fallback's is (then both kinds of block are raw-deletable:
  // context == data for each).
  c10::DeleterFnPtr raw_deleter() const override { return fallback_->raw_deleter() ? &delete_any : nullptr; }
  c10::Allocator* fallback() const { return fallback_; }

 private:
  c10::DataPtr allocate_any(size_t n) const {
    if (n < kHugeThreshold) return fallback_->allocate(n);
    return make_block_data_ptr(n);
  }
  c10::Allocator* fallback_;
};

std::mutex g_alloc_mutex;
HugePageCPUAllocator* g_installed = nullptr;  // never freed: DataPtrs may outlive any switch

}  // namespace

at::Tensor empty_huge(at::IntArrayRef shape, at::ScalarType dtype, bool fault_in) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dtype);
  void* p = huge_alloc(bytes, fault_in);
  try {
    return at::from_blob(p, shape, [bytes](void* q) { huge_free(q, bytes); },
                         at::TensorOptions().dtype(dtype).device(at::kCPU));
  } catch (...) {
    huge_free(p, bytes);
    throw;
  }
}

bool set_huge_page_aten_allocator(bool enable) {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  c10::Allocator* current = c10::GetCPUAllocator();
  const bool was = g_installed != nullptr && current == g_installed;
  if (enable && !was) {
    // One instance for as long as the allocator underneath stays the same: blocks it
    // served keep a pointer to it (StorageImpl::allocator(), used when a tensor grows).
    if (g_installed == nullptr || g_installed->fallback() != current) g_installed = new HugePageCPUAllocator(current);
    g_fallback_raw_deleter.store(current->raw_deleter());
    // priority 0 overrides the default allocator (which registers with priority 0 too);
    // a higher-priority allocator installed by someone else wins and is left alone.
    c10::SetCPUAllocator(g_installed, /*priority=*/0);
  } else if (!enable && was) {
    c10::SetCPUAllocator(g_installed->fallback(), /*priority=*/0);
  }
  return was;
}

bool install_default_aten_allocator() {
  // Once per process: a worker thread loading the addon later leaves the setting alone.
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("SMOOTHCE_ATEN_ALLOCATOR");
    if (env != nullptr && (std::strcmp(env, "default") == 0 || std::strcmp(env, "0") == 0)) return;
    set_huge_page_aten_allocator(true);
  });
  return huge_page_aten_allocator_enabled();
}

bool huge_page_aten_allocator_enabled() {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  return g_installed != nullptr && c10::GetCPUAllocator() == g_installed;
}

}  // namespace smoothce
