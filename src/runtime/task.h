// What a stream runs: a task, and what it reports.
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

#include "acl/acl_base.h"

namespace distbarrier::runtime {

class Stream;

struct TaskStatus {
  aclError code = ACL_SUCCESS;
  std::string message;

  bool ok() const { return code == ACL_SUCCESS; }
  static TaskStatus Ok() { return {}; }
};

// Hands a suspended task's result back to its stream. Whoever a task arranged to finish it
// calls Resume exactly once; the stream then goes on with its next tasks on that thread
// (as far as they may run inline) without waking the stream's own worker.
class Resumer {
 public:
  explicit Resumer(Stream* stream) : stream_(stream) {}
  void Resume(TaskStatus status) const;

 private:
  Stream* stream_;
};

// A step of a suspendable task (see Task::step).
enum class StepCall {
  kStart,  // the stream reached the task
  kPoll,   // the task is suspended, and its wake time came or the stream is being aborted
};

struct StepResult {
  enum class Kind {
    kDone,          // finished with `status`
    kSuspended,     // someone will call Resume; poll again at `wake_at`
    kResumeComing,  // someone already took the task over and will call Resume; do not poll
  };
  Kind kind = Kind::kDone;
  TaskStatus status;
  std::chrono::steady_clock::time_point wake_at = std::chrono::steady_clock::time_point::max();

  static StepResult Done(TaskStatus status) { return {Kind::kDone, std::move(status), {}}; }
  static StepResult Suspended(std::chrono::steady_clock::time_point wake_at) { return {Kind::kSuspended, {}, wake_at}; }
  static StepResult ResumeComing() { return {Kind::kResumeComing, {}, {}}; }
};

struct Task {
  // A blocking task: runs on the stream's worker. `stop` is requested when the stream is
  // aborted (aclFinalize); a task that blocks must wake up for it.
  std::function<TaskStatus(const std::stop_token& stop)> run{};
  // Called instead of `run`/`step` when the task is dropped because its stream has failed or
  // been aborted, so whoever waits on the task's effect (an event) learns of the failure.
  std::function<void(const TaskStatus& cause)> on_drop{};
  // A suspendable task, instead of `run`: waits without holding a thread. A kPoll call runs
  // on the worker with the stream's lock held, so it must not resume any stream.
  std::function<StepResult(StepCall call, const Resumer& resumer, const std::stop_token& stop)> step{};
  // Cheap and never blocks on user code: may run on whichever thread drives the stream (the
  // launching thread, or one that resumed the stream), not only on the stream's worker.
  bool may_run_inline = false;
};

}  // namespace distbarrier::runtime
