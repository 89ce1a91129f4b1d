// What a stream runs: a task, and what it reports.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
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
  // Whether the step runs on the stream's own threads: its worker, or a launch onto it running
  // the task inline. Not when another stream's thread runs it after a resume (a releaser going
  // on with the tasks that waited behind a barrier it finished).
  bool OnTheStreamsOwnThread() const;

 private:
  Stream* stream_;
};

// A step of a suspendable task (see Task::step).
enum class StepCall {
  kStart,  // the stream reached the task
  kPoll,   // the task is suspended, and its wake time came or the stream is being aborted
  kBlock,  // the task's start said the rest blocks (kBlocks): run it to the end, on the worker
};

struct StepResult {
  enum class Kind {
    kDone,          // finished with `status`
    kSuspended,     // someone will call Resume; poll again at `wake_at`
    kResumeComing,  // someone already took the task over and will call Resume; do not poll
    kBlocks,        // the rest blocks with nobody to resume it: the stream's worker finishes it
                    // with Step(kBlock) (on the worker at once; from another thread, it hands
                    // the task over and returns: a launch that ran the start inline)
  };
  Kind kind = Kind::kDone;
  TaskStatus status;
  std::chrono::steady_clock::time_point wake_at = std::chrono::steady_clock::time_point::max();

  static StepResult Done(TaskStatus status) { return {Kind::kDone, std::move(status), {}}; }
  static StepResult Suspended(std::chrono::steady_clock::time_point wake_at) { return {Kind::kSuspended, {}, wake_at}; }
  static StepResult ResumeComing() { return {Kind::kResumeComing, {}, {}}; }
  static StepResult Blocks() { return {Kind::kBlocks, {}, {}}; }
};

// A task that waits without holding a thread (a barrier): Step(kStart) runs where the stream
// reaches it and either finishes it at once or suspends it, having arranged for someone to
// call resumer.Resume exactly once. While it is suspended, the stream's worker calls
// Step(kPoll) at its wake time and when the stream is aborted; that call runs with the
// stream's lock held, so it must not resume any stream.
class SuspendableTask {
 public:
  virtual ~SuspendableTask() = default;
  virtual StepResult Step(StepCall call, const Resumer& resumer, const std::stop_token& stop) = 0;
};

struct Task {
  // A blocking task: runs on the stream's worker. `stop` is requested when the stream is
  // aborted (aclFinalize); a task that blocks must wake up for it.
  std::function<TaskStatus(const std::stop_token& stop)> run{};
  // Called instead of running the task when it is dropped because its stream has failed or
  // been aborted, so whoever waits on the task's effect (an event) learns of the failure.
  std::function<void(const TaskStatus& cause)> on_drop{};
  // Instead of `run`: a suspendable task.
  std::unique_ptr<SuspendableTask> suspendable{};
  // Its start stepped to kBlocks on a thread that may not block: the worker goes on with kBlock.
  bool blocking_rest = false;
  // Cheap and never blocks on user code: may run on whichever thread drives the stream (the
  // launching thread, or one that resumed the stream), not only on the stream's worker.
  bool may_run_inline = false;
};

}  // namespace distbarrier::runtime
