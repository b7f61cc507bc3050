#include "aten/distributed.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <mutex>

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif

#ifdef SMOOTHCE_WITH_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

// LibTorch 2.1 and later can hand the store an already-bound listening socket
// (TCPStoreOptions::masterListenFd); before that, c10d's store binds every interface.
#if defined(TORCH_VERSION_MAJOR) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
#define SMOOTHCE_STORE_LISTEN_FD 1
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
#endif

#include <atomic>
#include <cctype>
#include <thread>

// TCPStoreOptions::useLibUV (LibTorch >= 2.2; the default became true in 2.4).
#if defined(TORCH_VERSION_MAJOR) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2))
#define SMOOTHCE_TCPSTORE_HAS_LIBUV 1
#endif

namespace smoothce {
namespace dist {

int default_store_layout() {
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
  return 2;
#else
  return 1;
#endif
}

#ifdef SMOOTHCE_WITH_GLOO

class Group {
 public:
  GroupOptions opts;
  c10::intrusive_ptr<c10d::Store> tcp;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::mutex mu;  // collectives of one group run one at a time, in call order
  bool destroyed = false;
};

bool available() { return true; }

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

#ifdef SMOOTHCE_STORE_LISTEN_FD
// A TCP socket bound to the store's own address (host:port as given to init), not yet
// listening, for c10d to take over; -1 when the address is not one of this machine's
// (EADDRNOTAVAIL: behind NAT, say), in which case c10d binds every interface as before.
// Any other failure (the port is taken) is left to c10d, which reports it in its own words.
int bind_store_socket(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  std::vector<addrinfo*> order;
  for (addrinfo* a = found; a; a = a->ai_next) order.push_back(a);
  // IPv4 first: ranks and Python's torch.distributed resolve 'localhost' to 127.0.0.1 first.
  std::stable_sort(order.begin(), order.end(),
                   [](addrinfo* a, addrinfo* b) { return a->ai_family == AF_INET && b->ai_family != AF_INET; });
  int fd = -1;
  for (addrinfo* a : order) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}
#endif

std::string where(const Group& g) {
  return "(rank " + std::to_string(g.opts.rank) + " of " + std::to_string(g.opts.world_size) + ", store " +
         g.opts.host + ":" + std::to_string(g.opts.port) + ", timeout " + std::to_string(g.opts.timeout.count()) +
         " ms)";
}

// Whether a c10d/Gloo message reports a timeout: the store's "Timed out after N seconds
// waiting for clients", "Wait timeout", "Socket Timeout", "timed out after N ms", ...
bool says_timeout(const std::string& message) {
  std::string m(message);
  for (char& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return m.find("timed out") != std::string::npos || m.find("timeout") != std::string::npos ||
         m.find("time out") != std::string::npos;
}

// Rethrows an init failure as "distributed init timed out (...)" when it was a timeout,
// "distributed init failed (...)" otherwise; lib/distributed.ts gives them their codes.
[[noreturn]] void init_failed(const Group& g, const std::string& inner, bool timeout) {
  TORCH_CHECK(false, "distributed init ", timeout ? "timed out " : "failed ", where(g), ": ", inner);
}

#ifdef SMOOTHCE_TCPSTORE_HAS_LIBUV
// LibTorch 2.4+ asks for the libuv TCPStore backend by default and throws "use_libuv was
// requested but PyTorch was build without libuv support" when it was built without it (as
// Debian's is). The first group finds out; later groups use what it found.
std::atomic<int> g_libuv{-1};  // -1 unknown, 0 unavailable, 1 available

c10::intrusive_ptr<c10d::Store> make_tcp_store(const std::string& host, c10d::TCPStoreOptions so) {
  if (g_libuv.load() == 0) so.useLibUV = false;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(host, so);
    if (so.useLibUV) g_libuv.store(1);
    return store;
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    if (!so.useLibUV || m.find("libuv") == std::string::npos) throw;
    g_libuv.store(0);
  }
  so.useLibUV = false;
  return c10::make_intrusive<c10d::TCPStore>(host, so);
}
#else
c10::intrusive_ptr<c10d::Store> make_tcp_store(const std::string& host, const c10d::TCPStoreOptions& so) {
  return c10::make_intrusive<c10d::TCPStore>(host, so);
}
#endif

void check_alive(const Group& g) {
  TORCH_CHECK(!g.destroyed && g.pg, "the process group was destroyed");
}

// Waits for the collective; gloo reports a dead or missing peer as an error or a
// timeout, which we rethrow with the group's coordinates.
void wait(Group& g, const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  try {
    work->wait(g.opts.timeout);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "distributed ", what, " failed ", where(g),
                ": a rank may have died, left or not arrived in time: ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "distributed ", what, " failed ", where(g),
                ": a rank may have died, left or not arrived in time: ", e.what());
  }
}

// The header every rank all-gathers before a checked collective's data moves. A mismatch
// would otherwise reach Gloo, whose transport thread aborts the process (GLOO_ENFORCE on a
// preamble longer than the posted buffer: a bigger peer tensor) or which returns a wrong
// result (a smaller one); now every rank sees every header and throws the same error.
enum Field : int {
  kMagic, kCollective, kReduceOp, kDType, kLayout, kDims, kNumel, kShapeHash, kDim0,
  kHeaderFields = kDim0 + 8,  // the first 8 dimensions, for the message
};
constexpr int64_t kHeaderMagic = 0x534d43450001;  // "SMCE", version 1
enum class Collective : int64_t { AllReduce = 1, AllGather = 2, Barrier = 3 };

const char* collective_name(int64_t c) {
  switch (c) {
    case 1: return "allReduce";
    case 2: return "allGather";
    case 3: return "barrier";
    default: return "an unknown collective";
  }
}

const char* op_name(int64_t op) {
  switch (op) {
    case 0: return "sum";
    case 1: return "product";
    case 2: return "min";
    case 3: return "max";
    default: return "none";
  }
}

// smoothce's names for the dtypes (lib/tensor.ts), ATen's for the rest.
std::string dtype_name(int64_t st) {
  if (st < 0 || st >= static_cast<int64_t>(at::ScalarType::NumOptions)) return "dtype #" + std::to_string(st);
  switch (static_cast<at::ScalarType>(st)) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: return c10::toString(static_cast<at::ScalarType>(st));
  }
}

std::string describe_field(const std::vector<int64_t>& h, int field) {
  switch (field) {
    case kMagic: return h[kMagic] == kHeaderMagic ? "checked" : "not a smoothce header";
    case kCollective: return collective_name(h[kCollective]);
    case kReduceOp: return op_name(h[kReduceOp]);
    case kDType: return h[kDType] == -1 ? "none" : dtype_name(h[kDType]);
    case kLayout: return h[kLayout] == 0 ? "strided" : "layout #" + std::to_string(h[kLayout]);
    default: {
      // Dimensions, element count or shape: the shape as far as the header carries it.
      const int64_t n = h[kDims];
      if (n < 0 || n > 64) return "a shape of " + std::to_string(n) + " dimensions";
      std::string out = "[";
      for (int64_t d = 0; d < n && d < 8; ++d) out += (d ? ", " : "") + std::to_string(h[kDim0 + d]);
      if (n > 8) out += ", ...";
      return out + "] (" + std::to_string(h[kNumel]) + " elements)";
    }
  }
}

const char* field_name(int field) {
  switch (field) {
    case kMagic: return "the collective check (a rank without it: checkCollectives off, or not smoothce)";
    case kCollective: return "the collective";
    case kReduceOp: return "the reduce op";
    case kDType: return "the dtype";
    case kLayout: return "the layout";
    default: return "the shape";
  }
}

std::vector<int64_t> header_of(Collective c, int64_t op, const at::Tensor* t) {
  std::vector<int64_t> h(kHeaderFields, 0);
  h[kMagic] = kHeaderMagic;
  h[kCollective] = static_cast<int64_t>(c);
  h[kReduceOp] = op;
  if (t) {
    h[kDType] = static_cast<int64_t>(t->scalar_type());
    h[kLayout] = static_cast<int64_t>(t->layout());
    h[kDims] = t->dim();
    h[kNumel] = t->numel();
    uint64_t hash = 14695981039346656037ull;  // FNV-1a over the dimensions
    for (int64_t d = 0; d < t->dim(); ++d) {
      const uint64_t v = static_cast<uint64_t>(t->size(d));
      for (int b = 0; b < 8; ++b) hash = (hash ^ ((v >> (8 * b)) & 0xff)) * 1099511628211ull;
      if (d < 8) h[kDim0 + d] = t->size(d);
    }
    h[kShapeHash] = static_cast<int64_t>(hash);
  } else {
    h[kDType] = -1;
  }
  return h;
}

// All-gathers this rank's header; throws the same "distributed <what> mismatch" error on every
// rank when any rank's header differs from rank 0's (each rank compares the same gathered rows).
void agree(Group& g, const char* what, Collective c, int64_t op, const at::Tensor* t) {
  if (!g.opts.check_collectives) return;
  const std::vector<int64_t> mine = header_of(c, op, t);
  at::Tensor in = at::from_blob(const_cast<int64_t*>(mine.data()), {kHeaderFields}, at::kLong).clone();
  std::vector<at::Tensor> ins{in};
  std::vector<std::vector<at::Tensor>> outs(1);
  for (int r = 0; r < g.opts.world_size; ++r) outs[0].push_back(at::empty_like(in));
  c10d::AllgatherOptions ao;
  ao.timeout = g.opts.timeout;
  wait(g, g.pg->allgather(outs, ins, ao), what);
  std::vector<std::vector<int64_t>> all;
  for (const at::Tensor& row : outs[0]) {
    const int64_t* p = row.data_ptr<int64_t>();
    all.emplace_back(p, p + kHeaderFields);
  }
  for (int field = 0; field < kDim0; ++field) {
    bool same = true;
    for (const auto& h : all) same = same && h[field] == all[0][field];
    if (same) continue;
    std::string values;
    for (size_t r = 0; r < all.size() && r < 16; ++r) {
      values += (r ? ", " : "") + std::string("rank ") + std::to_string(r) + " " + describe_field(all[r], field);
    }
    if (all.size() > 16) values += ", ...";
    TORCH_CHECK(false, "distributed ", what, " mismatch ", where(g), ": the ranks disagree on ", field_name(field), ": ",
                values, "; no data was exchanged");
  }
}

}  // namespace

std::shared_ptr<Group> create_group(const GroupOptions& o) {
  TORCH_CHECK_VALUE(o.backend == "gloo", "backend '", o.backend,
                    "' is not supported by this build (gloo is; nccl needs a CUDA LibTorch with NCCL)");
  TORCH_CHECK_VALUE(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "rank ", o.rank,
                    " is not in [0, worldSize = ", o.world_size, ")");
  auto g = std::make_shared<Group>();
  g->opts = o;
  // One deadline for the whole init: each phase (the store's join, Gloo's full-mesh
  // rendezvous, the start-up barrier, the sequence number) gets what is left of timeoutMs.
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  auto left = [&] {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (ms.count() <= 0) {
      init_failed(*g, "timed out after " + std::to_string(o.timeout.count()) + " ms waiting for all " +
                          std::to_string(o.world_size) + " ranks to join", true);
    }
    return ms;
  };
  c10d::TCPStoreOptions so;
  so.port = o.port;
  so.isServer = o.rank == 0;
  so.numWorkers = static_cast<std::size_t>(o.world_size);
  // Clients announce themselves on the store's join counter (a Python rank 0 waits for it);
  // rank 0 does not wait on that counter itself (c10d's wait there overshoots timeoutMs by up to
  // a second): Gloo's rendezvous below waits for every rank, within what is left of the deadline.
  so.waitWorkers = o.rank != 0;
  so.timeout = o.timeout;
  so.multiTenant = true;
#ifdef SMOOTHCE_STORE_LISTEN_FD
  // Listen on the store's address only, not on every interface (docs/security.md).
  if (so.isServer) {
    const int fd = bind_store_socket(o.host, o.port);
    if (fd >= 0) {
      so.masterListenFd = fd;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
      // The classic backend takes the socket on every build; the libuv one (the default from
      // 2.4) refuses to start where LibTorch was built without libuv, as Debian's 2.6 is.
      so.useLibUV = false;
#endif
    }
  }
#endif
  const bool layout2 = o.layout == GroupOptions::StoreLayout::Torch2 ||
                       (o.layout == GroupOptions::StoreLayout::Default && default_store_layout() == 2);
  try {
    g->tcp = make_tcp_store(o.host, so);
    // torch.distributed wraps the rendezvous store in PrefixStore("default_pg", store), then
    //   1.x: the first group's PrefixStore("0", ...) for the process group, and a
    //        store-based barrier on "store_based_barrier_key:1" after creating it;
    //   2.x: PrefixStore("0/", ...) for the group, then PrefixStore("cpu/", ...) for its
    //        Gloo backend (keys like default_pg/0//cpu//0/0), and no start-up barrier
    //        (TORCH_DIST_INIT_BARRIER defaults to 0).
    auto default_pg = c10::make_intrusive<c10d::PrefixStore>("default_pg", g->tcp);
    c10::intrusive_ptr<c10d::Store> group_store;
    if (layout2) {
      auto pg_store = c10::make_intrusive<c10d::PrefixStore>("0/", default_pg);
      group_store = c10::make_intrusive<c10d::PrefixStore>("cpu/", pg_store);
    } else {
      group_store = c10::make_intrusive<c10d::PrefixStore>("0", default_pg);
    }
    g->tcp->setTimeout(left());
    auto options = c10d::ProcessGroupGloo::Options::create(left());
    if (!o.interface.empty()) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(o.interface));
    } else if (is_loopback(o.host)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = static_cast<int>(options->devices.size() * 2);
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, o.rank, o.world_size, options);

    if (!layout2) {
      // _store_based_barrier(rank, store, timeout) with _group_count == 1.
      const std::string key = "store_based_barrier_key:1";
      default_pg->add(key, 1);
      while (default_pg->add(key, 0) != o.world_size) {
        left();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    g->tcp->setTimeout(left());
    g->pg->setSequenceNumberForGroup();
    g->tcp->setTimeout(o.timeout);
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    if (m.rfind("distributed init ", 0) == 0) throw;  // already ours
    init_failed(*g, m, says_timeout(m));
  } catch (const std::exception& e) {
    init_failed(*g, e.what(), says_timeout(e.what()));
  }
  return g;
}

at::Tensor all_reduce(Group& g, const at::Tensor& t, ReduceOp op) {
  std::lock_guard<std::mutex> lock(g.mu);
  check_alive(g);
  std::vector<at::Tensor> tensors{t.contiguous().clone()};
  c10d::AllreduceOptions ao;
  switch (op) {
    case ReduceOp::Sum: ao.reduceOp = c10d::ReduceOp::SUM; break;
    case ReduceOp::Product: ao.reduceOp = c10d::ReduceOp::PRODUCT; break;
    case ReduceOp::Min: ao.reduceOp = c10d::ReduceOp::MIN; break;
    case ReduceOp::Max: ao.reduceOp = c10d::ReduceOp::MAX; break;
  }
  ao.timeout = g.opts.timeout;
  agree(g, "allReduce", Collective::AllReduce, static_cast<int64_t>(op), &tensors[0]);
  wait(g, g.pg->allreduce(tensors, ao), "allReduce");
  return tensors[0];
}

std::vector<at::Tensor> all_gather(Group& g, const at::Tensor& t) {
  std::lock_guard<std::mutex> lock(g.mu);
  check_alive(g);
  std::vector<at::Tensor> in{t.contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g.opts.world_size; ++r) out[0].push_back(at::empty_like(in[0]));
  c10d::AllgatherOptions ao;
  ao.timeout = g.opts.timeout;
  agree(g, "allGather", Collective::AllGather, -1, &in[0]);
  wait(g, g.pg->allgather(out, in, ao), "allGather");
  return out[0];
}

void barrier(Group& g) {
  std::lock_guard<std::mutex> lock(g.mu);
  check_alive(g);
  c10d::BarrierOptions bo;
  bo.timeout = g.opts.timeout;
  if (g.opts.check_collectives) {
    // The header exchange is itself a barrier: no rank's all-gather completes before every
    // rank has sent its header.
    agree(g, "barrier", Collective::Barrier, -1, nullptr);
    return;
  }
  wait(g, g.pg->barrier(bo), "barrier");
}

void destroy(Group& g) {
  std::lock_guard<std::mutex> lock(g.mu);
  g.destroyed = true;
  g.pg.reset();
  g.tcp.reset();
}

#else  // !SMOOTHCE_WITH_GLOO

class Group {};
bool available() { return false; }
static const char* kMissing =
    "this smoothce build has no c10d/Gloo support (LibTorch without USE_C10D_GLOO, or Gloo's headers were not found "
    "at build time: apt-get install libgloo-dev and rebuild)";
std::shared_ptr<Group> create_group(const GroupOptions&) { TORCH_CHECK(false, kMissing); }
at::Tensor all_reduce(Group&, const at::Tensor&, ReduceOp) { TORCH_CHECK(false, kMissing); }
std::vector<at::Tensor> all_gather(Group&, const at::Tensor&) { TORCH_CHECK(false, kMissing); }
void barrier(Group&) { TORCH_CHECK(false, kMissing); }
void destroy(Group&) {}

#endif

#ifdef SMOOTHCE_WITH_GLOO
int rank(const Group& g) { return g.opts.rank; }
int world_size(const Group& g) { return g.opts.world_size; }
#else
int rank(const Group&) { return 0; }
int world_size(const Group&) { return 1; }
#endif

}  // namespace dist
}  // namespace smoothce
