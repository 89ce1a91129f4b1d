// A stream: an in-order task queue run by its own worker thread, asynchronously to the host
// and to every other stream (a task blocked on one stream never holds up another). The
// worker sleeps on a condition variable when idle and is started by the first task, so idle
// streams cost no CPU.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>

#include "runtime/task.h"

namespace distbarrier::runtime {

class Stream {
 public:
  explicit Stream(int device) : device_(device) {}
  ~Stream();  // aborts what is left and joins the worker
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int Device() const { return device_; }

  void Enqueue(Task task);

  // Waits for every task enqueued before the call. Returns the stream's failure, if any
  // (and makes its message the caller's recent error), or ACL_ERROR_RT_STREAM_SYNC_TIMEOUT
  // when `timeout` runs out first; the stream stays usable after a timeout.
  aclError Synchronize(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // True when every enqueued task has finished.
  bool Idle() const;

  // Destroy: no more tasks will come; the worker finishes the queue and exits.
  void Close();
  // Abort: the running task is asked to stop and queued tasks are dropped with `reason`.
  void Abort(TaskStatus reason);
  // Waits for the worker to exit (after Close or Abort).
  void Join();
  bool WorkerExited() const;

 private:
  void RunWorker();

  const int device_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::deque<Task> queue_;
  uint64_t enqueued_ = 0;
  uint64_t finished_ = 0;
  // Copies of the two counters readable without the mutex, so the worker and synchronizers
  // can yield a little before sleeping on the condition variables.
  std::atomic<uint64_t> enqueued_seen_{0};
  std::atomic<uint64_t> finished_seen_{0};
  // What each blocked Synchronize waits for: the worker wakes them only when the smallest is
  // reached, not after every task (a wake per task doubled the context switches per barrier).
  std::multiset<uint64_t> sync_targets_;
  TaskStatus failure_;  // sticky: the first failed task fails the stream until destroyed
  bool closing_ = false;
  bool worker_exited_ = false;
  std::stop_source stop_;
  std::mutex join_mutex_;  // Join may be called from the reaper and from aclFinalize
  std::thread worker_;
};

}  // namespace distbarrier::runtime
