// Page-fault-friendly CPU buffers (pure C++, no napi.h).
//
// Buffers of at least kHugeThreshold bytes are mmap'ed, aligned to 2 MiB (advised with
// MADV_HUGEPAGE only when SMOOTHCE_HUGE_ADVICE=1: see huge_advice_enabled() in
// allocator.cc for why fresh huge pages are slow on this VM); smaller ones come from the
// ordinary aligned heap. Freed large mappings are kept in a
// small cache (at most 8, SMOOTHCE_HUGE_CACHE_MB in total, default 512, 0 disables) and
// handed out again for the same size, so a loop of same-sized calls faults no pages.
// ATen's own large allocations inside the process go through the same path by default
// (set_huge_page_aten_allocator below).
#pragma once

#include <ATen/ATen.h>

#include <cstddef>

namespace smoothce {

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugeThreshold = size_t(512) << 10;

// A buffer of `bytes` bytes, 64-byte aligned (2 MiB aligned when large). Never returns
// null: throws std::bad_alloc. Contents are unspecified (the caller overwrites them).
void* huge_alloc(size_t bytes);
// fault_in false: a fresh mapping is not faulted in first (the caller does it, as copy_into_fresh).
void* huge_alloc(size_t bytes, bool fault_in);
// Copies `bytes` bytes into `dst` (memory from huge_alloc(…, false)), faulting in and copying
// each 4 MiB piece on the same thread, on up to four threads.
void copy_into_fresh(void* dst, const void* src, size_t bytes);
// Faults in the whole pages of [p, p + bytes) the way huge_alloc faults in a fresh mapping
// (memory about to be written; harmless on resident pages). From 8 MiB; SMOOTHCE_PREFAULT=0: nothing.
void fault_in(void* p, size_t bytes);
// Starts the parked helper threads these use (once per process; InitFused calls it at load).
void start_core_helpers();
// Frees what huge_alloc returned; `bytes` must be the size it was asked for.
void huge_free(void* p, size_t bytes) noexcept;
// Advises the whole 2 MiB pages inside [p, p + bytes) for transparent huge pages (a
// V8-owned output past the cap: its pages are not touched yet). Advisory only.
void advise_huge(void* p, size_t bytes) noexcept;
// Whether huge_alloc advises fresh mappings (SMOOTHCE_HUGE_ADVICE=1; default off).
bool huge_advice_enabled();

// External ArrayBuffers handed to JavaScript (huge-page outputs, ATen results viewed
// without a copy) are freed by their N-API finalizers, and Node 20 runs those from the
// event loop, not from the GC: a synchronous loop of large calls would keep every result
// alive until it yields (30 calls of a 1024x32000 gradient: 4 GB). The count below is of
// such bytes not finalized yet; past the cap results are V8-owned ArrayBuffers instead,
// which the GC frees by itself. The cap: SMOOTHCE_EXTERNAL_CAP_MB when set; by default
// 512 MiB, lowered to four buffers of the size being asked for (at least 64 MiB), as many
// as the huge-page cache can take back. At least one buffer is always allowed.
void external_bytes_add(int64_t bytes);
bool external_allowed(size_t bytes);
int64_t external_bytes_outstanding();

// An ATen tensor whose storage comes from huge_alloc (contiguous, CPU).
at::Tensor empty_huge(at::IntArrayRef shape, at::ScalarType dtype, bool fault_in = true);

// Installs (true) or removes (false) a CPU allocator for ATen that serves allocations of
// at least kHugeThreshold bytes with huge_alloc (2 MiB-aligned, MADV_HUGEPAGE, freed blocks
// cached and reused by size within SMOOTHCE_HUGE_CACHE_MB); smaller ones go to the
// allocator that was installed before. Memory allocated by either allocator is always
// freed by the one that allocated it (the deleter travels with each DataPtr, so blocks
// allocated before a switch, or by LibTorch before the addon loaded, are freed as before),
// and both kinds of block keep context == data, so raw_deleter() works for both. Switching
// is safe at any time. Returns whether it was installed before the call.
bool set_huge_page_aten_allocator(bool enable);
bool huge_page_aten_allocator_enabled();
// Called once per addon load: installs it unless SMOOTHCE_ATEN_ALLOCATOR is "default" or
// "0". The setting is process-wide (c10 has one CPU allocator): every LibTorch user in the
// process gets it. Returns whether it is installed.
bool install_default_aten_allocator();

}  // namespace smoothce
