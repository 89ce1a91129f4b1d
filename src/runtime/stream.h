// A stream: an in-order task queue, asynchronous to the host and to every other stream (a
// task blocked on one stream never holds up another).
//
// Each stream has a worker thread, started by the first task, that runs blocking tasks and
// sleeps on a condition variable when idle, so idle streams cost no CPU. But a stream is not
// tied to its worker: whichever thread holds the stream's runner role runs its tasks. The
// launching thread takes the role for a task that may run inline when the stream is idle; a
// suspendable task (a barrier) gives the role up while it waits, and the thread that ends
// the wait (the barrier's last arrival) takes it and goes on with the stream's next inline
// tasks. So when every rank of a barrier is in this process, one thread can carry all ranks
// through a run of barriers without a single context switch. The worker still keeps the
// suspended task's clock: it polls it at its wake time (timeouts, hang warnings) and on abort.
// A task whose start finds that the rest must block (a barrier waiting for other processes)
// says so (StepResult::kBlocks): started inline, it goes back to the head of the queue for the
// worker, and the launch returns.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>
#include <vector>

#include "common/adaptive_mutex.h"
#include "runtime/task.h"

namespace distbarrier::runtime {

// What aclrtCreateStreamWithConfig/aclrtCreateStreamV2 ask for. Recorded and reported by the
// getters; a simulated stream runs the same whatever they say (docs/DESIGN.md).
struct StreamConfig {
  uint32_t priority = 0;  // 0 (highest) to 7
  uint32_t flags = 0;     // ACL_STREAM_FAST_LAUNCH | ...
};

class Stream {
 public:
  using Config = StreamConfig;
  explicit Stream(int device, Config config = {});
  ~Stream();  // aborts what is left and joins the worker
  // A shared stream. Its last reference may be dropped by one of its own tasks (on its
  // worker), which can neither join itself nor free the object it still runs on: then the
  // stream is aborted and the worker deletes it as it exits.
  static std::shared_ptr<Stream> Create(int device, Config config = {});
  // The stream whose worker is the calling thread (it runs that stream's host functions);
  // null on any other thread.
  static const Stream* CurrentWorker();

  // How worker threads start: std::thread, unless a test swaps in a starter that throws as
  // std::thread does when no thread can be made. Null restores std::thread.
  using ThreadStarter = std::thread (*)(std::function<void()> body);
  static void SetThreadStarterForTesting(ThreadStarter starter);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int Device() const { return device_; }
  // A number unique among the process's streams, from 0 in creation order (aclrtStreamGetId).
  int32_t Id() const { return id_; }
  const Config& Configuration() const { return config_; }

  // Queues `task`, or drops it (on_drop) when the stream is closing. Throws std::system_error
  // when the stream's worker thread cannot start (RLIMIT_NPROC); then nothing is queued and
  // on_drop has been called. A stream holds at most QueueDepth() unfinished tasks, as a
  // device's task queue does. A launch beyond that waits until a quarter of them finished,
  // room for a run of launches rather than a wake-up per task, and says once after
  // DISTBARRIER_WARN_S that it waits (a program that launches a rank far ahead of the ranks
  // it waits for is not silent). A task of this stream launching onto it never waits (it
  // would wait for itself).
  void Enqueue(Task task);
  // DISTBARRIER_STREAM_QUEUE_DEPTH, default 4096, at least 1; read once.
  static uint64_t QueueDepth();

  // Waits for every task enqueued before the call. Returns the stream's failure, if any
  // (and makes its message the caller's recent error), or ACL_ERROR_RT_STREAM_SYNC_TIMEOUT
  // when `timeout` runs out first; the stream stays usable after a timeout. Refused
  // (ACL_ERROR_RT_PARAM_INVALID) on the stream's own worker, from one of its host functions.
  aclError Synchronize(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // True when every enqueued task has finished.
  bool Idle() const;
  // How many threads are blocked in Synchronize now (tests: a synchronize is under way).
  size_t BlockedSynchronizers() const;
  // How many launches wait for room in a full queue now.
  int BlockedLaunches() const;

  // Destroy: no more tasks will come; the worker finishes the queue and exits.
  void Close();
  // Abort: the running task is asked to stop and queued tasks are dropped with `reason`.
  void Abort(TaskStatus reason);
  // Waits for the worker to exit (after Close or Abort).
  void Join();
  bool WorkerExited() const;

 private:
  friend class Resumer;
  using Clock = std::chrono::steady_clock;
  enum class Runner { kNone, kWorker, kHelper, kSuspended };

  void RunWorker();
  // Starts the worker unless it runs or the stream is closing; may throw std::system_error.
  void StartWorker();
  // Blocks while QueueDepth() tasks are unfinished (see Enqueue), then until a quarter of them
  // finished.
  void WaitForRoom();
  // The deleter of Create: deletes now, or on its own worker hands the deletion to the worker's exit.
  static void Release(Stream* stream);
  // Runs the resumes this thread queued while it drove streams.
  static void DrainResumes();
  // With the lock held and the runner role taken: runs tasks until the queue is empty, a task
  // suspends, or (when !may_block) the next task may not run inline.
  void RunTasks(std::unique_lock<AdaptiveMutex>& lock, bool may_block);
  // Enqueue's fast path: when nothing is unfinished and nobody runs the stream, takes the runner
  // role and starts `task` on this thread at once (no inbox, no queue), then goes on as RunTasks
  // does. False, with `task` untouched, when the stream is not idle after all.
  bool RunIfIdle(Task& task);
  // Lock held, nobody running the stream: this launching thread takes the runner role and
  // calls `drive` (lock held on entry and exit), then releases the lock and runs the resumes
  // it queued meanwhile (t_driving).
  template <typename Drive>
  void DriveAsLauncher(std::unique_lock<AdaptiveMutex>& lock, Drive drive);
  // Lock held, the runner role taken: what a step of `task` returned. True when the task
  // finished (counted) and the runner goes on; false when it was suspended or handed to the
  // worker (a start that blocks), and the runner's role is given up or suspended.
  bool AfterStep(Task& task, StepResult step);
  // A step of `task`; resumes that the step causes run on this thread before it returns.
  StepResult Step(Task& task, StepCall call);
  // The suspended task finished with `status` (a Resume, or the worker's poll took it back).
  void ResumeNow(TaskStatus status);
  // Lock held: `task` stepped to kSuspended/kResumeComing. False when its resume came early:
  // then *status is its result and the caller finishes it.
  bool Suspend(Task task, const StepResult& step, std::optional<TaskStatus>* status);
  void PollSuspended(std::unique_lock<AdaptiveMutex>& lock);
  // Lock held: the suspended task finished with `status`; `role` (the worker, or a helper that
  // runs only inline tasks) takes the stream and goes on with it.
  void FinishSuspended(std::unique_lock<AdaptiveMutex>& lock, TaskStatus status, Runner role);
  // Lock held: moves the inbox's tasks to the end of queue_.
  void TakeInbox();
  bool InboxEmpty() const { return enqueued_seen_.load(std::memory_order_seq_cst) == taken_; }
  uint64_t Unfinished() const {
    return enqueued_seen_.load(std::memory_order_acquire) - finished_seen_.load(std::memory_order_acquire);
  }
  // Lock held: counts a finished task; `failure` (if not ok) fails the stream.
  void FinishLocked(TaskStatus failure);

  const int device_;
  const Config config_;
  const int32_t id_;
  // Launches only touch the inbox (and read runner_), so a thread launching onto a stream
  // that another thread is running does not contend for the stream's lock; the runner moves
  // the inbox into queue_ in batches. Lock order: mutex_, then inbox_mutex_.
  AdaptiveMutex inbox_mutex_;
  std::vector<Task> inbox_;
  // Tasks enqueued: raised under inbox_mutex_ with the push, or under mutex_ with taken_ (a
  // task started at once), so that enqueued_seen_ - taken_ is the inbox's size under both locks.
  std::atomic<uint64_t> enqueued_seen_{0};

  mutable AdaptiveMutex mutex_;             // everything below
  std::condition_variable_any work_ready_;  // the worker's
  std::condition_variable_any work_done_;   // synchronizers'
  std::condition_variable_any room_ready_;  // launches waiting for room in a full queue
  int room_waiters_ = 0;
  std::deque<Task> queue_;
  uint64_t taken_ = 0;  // tasks moved from the inbox to queue_
  uint64_t finished_ = 0;
  std::atomic<uint64_t> finished_seen_{0};  // readable without the lock, for yielding synchronizers
  // What each blocked Synchronize waits for: the worker wakes them only when the smallest is
  // reached, not after every task (a wake per task doubled the context switches per barrier).
  std::multiset<uint64_t> sync_targets_;
  TaskStatus failure_;  // sticky: the first failed task fails the stream until destroyed

  // Written under mutex_; read by Enqueue without it. Giving the role up and a launch's
  // publication of its task are seq_cst, so either the launch sees the role free (and takes
  // it) or the runner sees the task (and keeps the role).
  std::atomic<Runner> runner_{Runner::kNone};
  Task suspended_;                          // while runner_ is kSuspended
  Clock::time_point suspended_wake_;        // when the worker polls it
  bool resume_coming_ = false;              // someone took it over: do not poll
  std::optional<TaskStatus> early_resume_;  // resumed before its runner finished suspending it
  // When the sleeping worker wakes by itself (min while it is awake): a suspension that needs
  // an earlier poll wakes it, any other lets it sleep.
  Clock::time_point worker_alarm_ = Clock::time_point::min();

  bool closing_ = false;  // written under both locks
  bool worker_exited_ = false;
  std::stop_source stop_;
  bool delete_on_exit_ = false;              // the worker's own: its last reference went on the worker
  std::thread worker_;                       // under mutex_
  std::atomic<bool> worker_started_{false};  // set once: launches skip StartWorker after
};

}  // namespace distbarrier::runtime
