// Finding the live distbarrier processes of this host and asking them (status_protocol.h).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "job_view.h"

namespace distbarrier::status {

// The pids whose status socket (in /proc/net/unix) is named for `uid`, each once, ascending.
std::vector<pid_t> FindServers(uid_t uid);

// "stopped (SIGSTOP)", "stopped by a debugger", "exited", or empty for a running process
// (from /proc/<pid>/stat).
std::string ProcessProblem(pid_t pid);

// Sends `request` to every process at once and collects the replies within `budget`: a
// process that is stopped is not waited for, one that does not answer in time is reported as
// such, one whose socket belongs to another user is not asked.
std::vector<ProcessReply> Ask(const std::vector<pid_t>& pids, std::string_view request,
                              std::chrono::milliseconds budget);

}  // namespace distbarrier::status
