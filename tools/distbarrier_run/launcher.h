// distbarrier-run: the process launcher behind the command-line front end in main.cc.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "comm/bootstrap/job_secret.h"
#include "node_relay.h"

namespace distbarrier::run {

// The size of an HcclRootInfo, the payload relayed from rank 0 to every other rank.
inline constexpr std::size_t kRootInfoBytes = 4108;

// Exit codes of the launcher itself (a failing rank's own code is passed through).
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitTimeout = 124;
inline constexpr int kExitCannotExecute = 127;

struct Options {
  // Not given: 0 (-n), -1 or empty; PlanNode fills in the defaults (1 node, node 0,
  // 127.0.0.1:29500).
  int nproc_per_node = 0;            // -n / --nproc-per-node
  int nnodes = -1;                   // --nnodes
  int node_rank = -1;                // --node-rank
  std::string master_addr;           // --master-addr: where node 0 serves the root info
  int master_port = -1;              // --master-port
  double connect_timeout_s = 120.0;  // --connect-timeout: how long node k waits for node 0's root info
  std::string rank_table;            // --rank-table: start this node's share of a rank table job
  std::string secret_file;           // --secret-file: the job secret (else DISTBARRIER_JOB_SECRET[_FILE])
  double timeout_s = 0.0;            // --timeout; 0 = none
  double kill_grace_s = 5.0;         // --kill-grace: SIGTERM .. SIGKILL
  std::vector<std::string> command;  // program and its arguments
};

// One rank this node starts.
struct LocalRank {
  int rank = 0;        // in the whole job
  int local_rank = 0;  // on this node
  int device_id = -1;  // the rank table's device_id; -1 without a rank table
};

// What this node does, worked out from the options before anything starts.
struct NodePlan {
  enum class Relay {
    kLocal,  // one node: rank 0's root info goes through pipes to the other ranks
    kServe,  // node 0 of several: as kLocal, and served to the other nodes' launchers
    kFetch,  // node k > 0: fetched from node 0's launcher, then through pipes to the ranks
    kNone,   // a rank table job: the ranks need no root info
  };
  Relay relay = Relay::kLocal;
  int nnodes = 1;
  int node_rank = 0;
  int world_size = 0;
  std::vector<LocalRank> ranks;
  std::optional<comm::JobSecret> secret;
  std::optional<NodeAddress> master;  // kServe: where to listen; kFetch: where to ask
  // Variables every rank gets (besides its own RANK etc.), and inherited ones it must not see.
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> drop_env;
};

// The plan for `options`, or why they do not make one (a usage error).
std::variant<NodePlan, std::string> PlanNode(const Options& options);

// Starts the planned ranks of options.command, relays the root info, supervises them and
// returns the launcher's exit code (see README.md).
int Launch(const Options& options, const NodePlan& plan);

// One line on stderr, "distbarrier-run: ...", written with a single write() so that it does
// not interleave with the ranks' own output.
[[gnu::format(printf, 1, 2)]] void Say(const char* format, ...);

}  // namespace distbarrier::run
