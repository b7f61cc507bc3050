// Large results handed to JavaScript as external ArrayBuffers, and the early release of their
// memory (N-API layer).
//
// An external ArrayBuffer's finalizer runs only when the event loop turns (Node 20 queues it
// with SetImmediateThreadsafe), so a synchronous loop that never yields keeps every result's
// memory even after the GC has collected the buffer: each call then maps and faults in fresh
// memory (125 MiB for a 1024x32000 gradient: ~25-60 ms of page faults on the development VM,
// more than the kernel's own ~17 ms). Each tracked result therefore also has a weak reference;
// once the GC has collected the buffer (the reference reads empty), no JavaScript can reach the
// memory any more, and release_collected() frees it at the start of the next call, into the
// huge-page cache, where that call's own output finds it. The finalizer, when it runs later,
// then does nothing. Off with SMOOTHCE_EARLY_RELEASE=0, or set_early_release(false) (which
// lib/native.ts calls where ArrayBuffer.prototype.transfer could move an external buffer's
// memory to a new buffer: then a collected buffer would not mean unreachable memory).
#pragma once

#include <napi.h>

#include <cstddef>
#include <functional>

namespace smoothce {

// An external ArrayBuffer over `data` (`bytes` bytes), whose memory `release` frees, exactly
// once: from the buffer's finalizer, or from release_collected() once the buffer is collected.
// The bytes are reported to V8 as external memory (so that it collects such buffers) and counted
// by external_bytes_add (allocator.h). If the buffer cannot be created, `release` runs and the
// error is thrown.
Napi::ArrayBuffer external_result(Napi::Env env, void* data, size_t bytes, std::function<void()> release);

// Frees the memory of every tracked result of this thread's environment whose ArrayBuffer the
// GC has collected. Called at the start of each call that may allocate a large output.
void release_collected(Napi::Env env);

// release_collected(), and when that finds nothing while two or more large results are held,
// a full garbage collection first (see result_registry.cc for when it is and is not asked
// for). A call of its own: lib/ makes it just before a call with a large output.
void reclaim(Napi::Env env);

void set_early_release(bool on);
bool early_release_enabled();
// Tracked results not yet released, and how many were released early since load (tests).
size_t tracked_results();
size_t early_releases();
size_t forced_collections();

}  // namespace smoothce
