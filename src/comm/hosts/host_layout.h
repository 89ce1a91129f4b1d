// Where the ranks of a group across hosts run: which host each rank is on, which rank leads
// each host (its lowest: that rank's process makes the host's shared memory and runs its
// agent), the hosts' names. Host 0 is rank 0's host; the others are numbered by their lowest
// rank. Rank 0 works it out at join and sends it to every rank of another host.
#pragma once

#include <string>
#include <vector>

namespace distbarrier::comm {

struct HostLayout {
  int host_count = 1;
  int my_host = 0;                      // the host of this process
  std::vector<int> host_of_rank;        // per rank
  std::vector<int> leader_of_host;      // per host: its lowest rank
  std::vector<int> leader_pid_of_host;  // per host: the process of its leader
  std::vector<std::string> host_names;  // per host: hostname (and address), for messages

  bool IsLeader(int rank) const { return leader_of_host[host_of_rank[rank]] == rank; }
  std::vector<int> RanksOn(int host) const {
    std::vector<int> ranks;
    for (int rank = 0; rank < static_cast<int>(host_of_rank.size()); ++rank) {
      if (host_of_rank[rank] == host) ranks.push_back(rank);
    }
    return ranks;
  }
};

}  // namespace distbarrier::comm
