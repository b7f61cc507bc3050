// Pure C++ (no napi.h): a process group over PyTorch's own c10d engine — TCPStore
// rendezvous and ProcessGroupGloo — laid out exactly as torch.distributed's
// init_process_group lays it out (1.x or 2.x, see StoreLayout), so Node ranks and Python
// ranks can join one group.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace smoothce {
namespace dist {

struct GroupOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 29500;
  int rank = 0;
  int world_size = 1;
  std::string backend = "gloo";
  std::chrono::milliseconds timeout{30000};
  std::string interface;  // GLOO_SOCKET_IFNAME; empty: loopback for loopback hosts, else the default device
  // Which torch.distributed's store layout to use; Default: the linked LibTorch's major version.
  enum class StoreLayout { Default, Torch1, Torch2 } layout = StoreLayout::Default;
  // Before each collective's data moves, the ranks all-gather a small header (which collective,
  // reduce op, dtype, layout, shape) and every rank throws "distributed <op> mismatch ..." when
  // they disagree, instead of letting Gloo abort a process or return a wrong result. Off: no
  // header (ranks that do not speak it, such as Python's torch.distributed, can join).
  bool check_collectives = true;
};

// The layout a Default group uses with this build: 1 or 2 (the linked LibTorch's major version).
int default_store_layout();


enum class ReduceOp { Sum, Product, Min, Max };

// True when this build has c10d with Gloo (USE_C10D_GLOO).
bool available();

class Group;

// Blocking: connects to the store (rank 0 hosts it), creates the process group,
// then runs PyTorch's store-based barrier and sequence-number handshake.
std::shared_ptr<Group> create_group(const GroupOptions& opts);

// Blocking collectives (each checked first when opts.check_collectives; see kHeaderFields).
// all_reduce returns the reduced copy of t (t is not modified).
at::Tensor all_reduce(Group& g, const at::Tensor& t, ReduceOp op);
// Every rank's tensor, in rank order (all tensors must have the same shape and dtype).
std::vector<at::Tensor> all_gather(Group& g, const at::Tensor& t);
void barrier(Group& g);
// Releases the process group and the store; later calls throw. Safe to call twice.
void destroy(Group& g);
int rank(const Group& g);
int world_size(const Group& g);

}  // namespace dist
}  // namespace smoothce
