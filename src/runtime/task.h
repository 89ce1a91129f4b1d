// What a stream runs: a task, and what it reports.
#pragma once

#include <functional>
#include <stop_token>
#include <string>

#include "acl/acl_base.h"

namespace distbarrier::runtime {

struct TaskStatus {
  aclError code = ACL_SUCCESS;
  std::string message;

  bool ok() const { return code == ACL_SUCCESS; }
  static TaskStatus Ok() { return {}; }
};

struct Task {
  // Runs on the stream's worker. `stop` is requested when the stream is aborted (aclFinalize);
  // a task that blocks must wake up for it.
  std::function<TaskStatus(const std::stop_token& stop)> run;
  // Called instead of `run` when the task is dropped because its stream has failed or been
  // aborted, so whoever waits on the task's effect (an event) learns of the failure.
  std::function<void(const TaskStatus& cause)> on_drop;
};

}  // namespace distbarrier::runtime
