#include "runtime/stream.h"

#include <sched.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "common/deadline.h"
#include "common/env.h"
#include "common/error.h"
#include "common/log.h"

namespace distbarrier::runtime {
namespace {
// Stream ids (aclrtStreamGetId): relaxed, only uniqueness matters.
std::atomic<int32_t> g_next_stream_id{0};
int32_t NextStreamId() {
  return g_next_stream_id.fetch_add(1, std::memory_order_relaxed);
}

// Before sleeping on a condition variable, an idle worker (waiting for work) and a
// synchronizer (waiting for the stream) yield this many times watching the counter they wait
// for: when the other side is about to come, a hand-off costs a yield instead of two futex
// calls and a wake-up. Bounded, so an idle stream still sleeps.
constexpr int kYieldsBeforeSleep = 50;
// Unfinished tasks a stream holds before a launch waits for room: far more than a program
// keeps in flight on purpose, far less than the memory a runaway launch loop would take.
constexpr int64_t kDefaultQueueDepth = 4096;

// A launch that found the queue full waits until a quarter of it has drained, not one task:
// woken for every finished task, a launch loop running ahead of its stream cost a wake-up and
// a context switch per task (a 2-process loop of 100,000 barriers: 19-26 us per barrier, now 1.0-1.1).
uint64_t RoomMark(uint64_t depth) {
  return depth - std::max<uint64_t>(1, depth / 4);
}

template <typename Ready>
void YieldUntil(Ready ready) {
  for (int i = 0; i < kYieldsBeforeSleep && !ready(); ++i) sched_yield();
}

// A thread that drives streams (runs a step, or resumes a stream) queues the resumes that
// step causes here and runs them when the step returns, so a chain of barriers resuming one
// another runs as a loop on this thread rather than as a recursion.
struct PendingResume {
  Stream* stream;
  TaskStatus status;
};
thread_local bool t_driving = false;
thread_local Stream* t_worker_of = nullptr;       // the stream whose worker this thread is
thread_local Stream* t_launching_onto = nullptr;  // the stream whose launch runs inline on this thread
std::atomic<Stream::ThreadStarter> g_thread_starter{nullptr};
thread_local std::vector<PendingResume> t_pending;
}  // namespace

void Resumer::Resume(TaskStatus status) const {
  if (t_driving) {
    t_pending.push_back({stream_, std::move(status)});
    return;
  }
  t_driving = true;
  stream_->ResumeNow(std::move(status));
  Stream::DrainResumes();
  t_driving = false;
}

bool Resumer::OnTheStreamsOwnThread() const {
  return t_worker_of == stream_ || t_launching_onto == stream_;
}

void Stream::DrainResumes() {
  // Each resume may queue more; the index, not an iterator, survives the vector growing.
  for (size_t i = 0; i < t_pending.size(); ++i) {
    Stream* stream = t_pending[i].stream;
    TaskStatus status = std::move(t_pending[i].status);
    stream->ResumeNow(std::move(status));
  }
  t_pending.clear();
}

Stream::Stream(int device, Config config) : device_(device), config_(config), id_(NextStreamId()) {}

std::shared_ptr<Stream> Stream::Create(int device, Config config) {
  return std::shared_ptr<Stream>(new Stream(device, config), Release);
}

const Stream* Stream::CurrentWorker() {
  return t_worker_of;
}

void Stream::Release(Stream* stream) {
  if (t_worker_of != stream) {
    delete stream;
    return;
  }
  // Inside one of its own tasks: the worker still runs on the object. Stop the stream and let
  // the worker delete it when it leaves RunWorker (delete_on_exit_ is the worker's own).
  stream->Abort({ACL_ERROR_RT_STREAM_ABORT, "stream released by one of its own tasks"});
  stream->delete_on_exit_ = true;
}

Stream::~Stream() {
  Abort({ACL_ERROR_RT_STREAM_ABORT, "stream destroyed"});
  Join();
}

void Stream::Enqueue(Task task) {
  // Before the task is published, so that a worker that cannot start leaves nothing queued
  // that nobody would run (a synchronize would wait for it forever).
  if (!worker_started_.load(std::memory_order_acquire)) {
    try {
      StartWorker();
    } catch (...) {
      if (task.on_drop) task.on_drop({ACL_ERROR_RT_INTERNAL_ERROR, "the stream's worker thread could not start"});
      throw;
    }
  }
  // Nothing unfinished and nobody running the stream: start the task here, with no trip
  // through the inbox and the queue. Not when this thread already drives a stream: its queued
  // resumes would wait on this task.
  if (task.may_run_inline && !t_driving && runner_.load(std::memory_order_relaxed) == Runner::kNone &&
      Unfinished() == 0 && RunIfIdle(task)) {
    return;
  }
  WaitForRoom();
  {
    std::unique_lock inbox(inbox_mutex_);
    if (closing_) {  // destroyed or aborted: nobody will run it
      inbox.unlock();
      if (task.on_drop) task.on_drop({ACL_ERROR_RT_STREAM_ABORT, "stream destroyed or aborted"});
      return;
    }
    inbox_.push_back(std::move(task));
    enqueued_seen_.fetch_add(1, std::memory_order_seq_cst);
  }
  if (runner_.load(std::memory_order_seq_cst) != Runner::kNone) return;  // its runner takes it in turn
  std::unique_lock lock(mutex_);
  if (runner_.load(std::memory_order_relaxed) != Runner::kNone) return;
  TakeInbox();
  if (queue_.empty()) return;  // a runner came and went and took it
  // Nothing ahead of a task that may run inline: run it here, with no hand-off to the worker.
  // Not when this thread already drives a stream: its queued resumes would wait on this task.
  if (!t_driving && queue_.size() == 1 && queue_.front().may_run_inline && failure_.ok()) {
    DriveAsLauncher(lock, [&] { RunTasks(lock, /*may_block=*/false); });
    return;
  }
  lock.unlock();
  work_ready_.notify_one();
}

bool Stream::RunIfIdle(Task& task) {
  std::unique_lock lock(mutex_);
  if (runner_.load(std::memory_order_relaxed) != Runner::kNone || !queue_.empty() || !InboxEmpty() || !failure_.ok() ||
      closing_) {
    return false;
  }
  // Counted as enqueued and taken at once (the inbox's difference stays the same), so
  // Synchronize, Idle and the room count see it as any other task.
  enqueued_seen_.fetch_add(1, std::memory_order_seq_cst);
  ++taken_;
  DriveAsLauncher(lock, [&] {
    lock.unlock();
    StepResult step = task.suspendable ? Step(task, StepCall::kStart) : StepResult::Done(task.run(stop_.get_token()));
    lock.lock();
    if (AfterStep(task, std::move(step))) RunTasks(lock, /*may_block=*/false);
  });
  return true;
}

template <typename Drive>
void Stream::DriveAsLauncher(std::unique_lock<AdaptiveMutex>& lock, Drive drive) {
  runner_.store(Runner::kHelper, std::memory_order_relaxed);
  t_driving = true;
  t_launching_onto = this;
  drive();
  t_launching_onto = nullptr;
  lock.unlock();
  DrainResumes();
  t_driving = false;
}

uint64_t Stream::QueueDepth() {
  static const uint64_t depth = static_cast<uint64_t>(std::clamp<int64_t>(
      EnvInt("DISTBARRIER_STREAM_QUEUE_DEPTH", kDefaultQueueDepth), 1, std::numeric_limits<int64_t>::max()));
  return depth;
}

void Stream::WaitForRoom() {
  const uint64_t depth = QueueDepth();
  if (Unfinished() < depth || t_worker_of == this) return;
  std::unique_lock lock(mutex_);
  const Clock::time_point start = Clock::now();
  const auto warn_at = DeadlineAfter(
      start, EnvDuration("DISTBARRIER_WARN_S", std::chrono::seconds(1)).value_or(std::chrono::seconds(30)));
  bool warned = false;
  ++room_waiters_;
  while (Unfinished() > RoomMark(depth) && !closing_) {
    if (room_ready_.wait_until(lock, warned ? Clock::time_point::max() : warn_at) == std::cv_status::timeout &&
        !warned) {
      warned = true;
      Log(LogLevel::kWarning,
          "a launch onto a stream of device {} has waited {} s for room: {} tasks are unfinished, the queue holds {} "
          "(DISTBARRIER_STREAM_QUEUE_DEPTH); still waiting",
          device_, std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count(), Unfinished(), depth);
    }
  }
  --room_waiters_;
}

void Stream::SetThreadStarterForTesting(ThreadStarter starter) {
  g_thread_starter.store(starter);
}

void Stream::StartWorker() {
  std::lock_guard lock(mutex_);
  // The worker also keeps the time of suspended tasks, so it starts even when it runs nothing.
  if (worker_.joinable() || closing_) return;  // closing: the launch drops its task
  ThreadStarter starter = g_thread_starter.load();
  std::function<void()> body = [this] {
    t_worker_of = this;
    RunWorker();
    t_worker_of = nullptr;
    if (delete_on_exit_) {  // nobody else holds the stream: nobody joins this thread
      worker_.detach();
      delete this;
    }
  };
  worker_ = starter != nullptr ? starter(std::move(body)) : std::thread(std::move(body));
  worker_exited_ = false;  // Close may have said so before the worker started
  worker_started_.store(true, std::memory_order_release);
}

void Stream::TakeInbox() {
  // A launch between this check and the runner giving its role up sees the role still taken
  // or is seen by the runner's own check (RunTasks); its task is not left behind.
  if (InboxEmpty()) return;
  std::lock_guard inbox(inbox_mutex_);
  for (Task& task : inbox_) queue_.push_back(std::move(task));
  taken_ += inbox_.size();
  inbox_.clear();
}

StepResult Stream::Step(Task& task, StepCall call) {
  const bool outermost = !t_driving;
  t_driving = true;
  StepResult result = task.suspendable->Step(call, Resumer(this), stop_.get_token());
  if (outermost) {
    DrainResumes();
    t_driving = false;
  }
  return result;
}

void Stream::RunTasks(std::unique_lock<AdaptiveMutex>& lock, bool may_block) {
  const Runner role = runner_.load(std::memory_order_relaxed);
  for (;;) {
    if (queue_.empty()) TakeInbox();
    if (queue_.empty()) {
      runner_.store(Runner::kNone, std::memory_order_seq_cst);
      if (!InboxEmpty()) {  // a launch that saw the role still taken
        runner_.store(role, std::memory_order_relaxed);
        continue;
      }
      if (closing_) work_ready_.notify_one();  // the worker may exit now
      return;
    }
    const bool dropping = !failure_.ok() || stop_.stop_requested();
    if (!dropping && !may_block && !queue_.front().may_run_inline) {
      runner_.store(Runner::kNone, std::memory_order_relaxed);
      work_ready_.notify_one();  // a task only the worker may run
      return;
    }
    Task task = std::move(queue_.front());
    queue_.pop_front();
    TaskStatus drop_cause = failure_;
    lock.unlock();

    if (dropping) {
      if (drop_cause.ok()) drop_cause = {ACL_ERROR_RT_STREAM_ABORT, "stream aborted"};
      if (task.on_drop) task.on_drop(drop_cause);
      task = Task{};
      lock.lock();
      FinishLocked(TaskStatus::Ok());  // the stream's failure is already recorded
    } else if (task.suspendable) {
      StepResult step = Step(task, task.blocking_rest ? StepCall::kBlock : StepCall::kStart);
      if (step.kind == StepResult::Kind::kBlocks && may_block) step = Step(task, StepCall::kBlock);  // the worker
      if (step.kind == StepResult::Kind::kDone) task = Task{};  // its captures go before the lock is taken
      lock.lock();
      if (!AfterStep(task, std::move(step))) return;
    } else {
      TaskStatus status = task.run(stop_.get_token());
      task = Task{};
      lock.lock();
      FinishLocked(std::move(status));
    }
  }
}

bool Stream::AfterStep(Task& task, StepResult step) {
  std::optional<TaskStatus> status;
  switch (step.kind) {
    case StepResult::Kind::kDone: status = std::move(step.status); break;
    case StepResult::Kind::kBlocks:
      // Its start ran inline (a launch; the worker would have run the rest); the rest is the
      // worker's, still first in line.
      task.blocking_rest = true;
      task.may_run_inline = false;
      queue_.push_front(std::move(task));
      runner_.store(Runner::kNone, std::memory_order_relaxed);
      work_ready_.notify_one();
      return false;
    case StepResult::Kind::kSuspended:
    case StepResult::Kind::kResumeComing:
      if (Suspend(std::move(task), step, &status)) return false;
      break;  // resumed before it was suspended
  }
  FinishLocked(std::move(*status));
  return true;
}

bool Stream::Suspend(Task task, const StepResult& step, std::optional<TaskStatus>* status) {
  if (early_resume_) {
    *status = std::move(*early_resume_);
    early_resume_.reset();
    return false;
  }
  suspended_ = std::move(task);
  runner_.store(Runner::kSuspended, std::memory_order_relaxed);
  resume_coming_ = step.kind == StepResult::Kind::kResumeComing;
  suspended_wake_ = resume_coming_ ? Clock::time_point::max() : step.wake_at;
  // Wake the worker only when it would sleep past the new wake time.
  if (!resume_coming_ && suspended_wake_ < worker_alarm_) work_ready_.notify_one();
  return true;
}

void Stream::ResumeNow(TaskStatus status) {
  std::unique_lock lock(mutex_);
  if (runner_.load(std::memory_order_relaxed) != Runner::kSuspended) {  // its runner is between step and Suspend
    early_resume_ = std::move(status);
    return;
  }
  FinishSuspended(lock, std::move(status), Runner::kHelper);
}

void Stream::FinishSuspended(std::unique_lock<AdaptiveMutex>& lock, TaskStatus status, Runner role) {
  Task done = std::move(suspended_);
  suspended_ = Task{};
  resume_coming_ = false;
  runner_.store(role, std::memory_order_relaxed);
  FinishLocked(std::move(status));
  RunTasks(lock, /*may_block=*/role == Runner::kWorker);
}

void Stream::PollSuspended(std::unique_lock<AdaptiveMutex>& lock) {
  StepResult step = Step(suspended_, StepCall::kPoll);
  switch (step.kind) {
    case StepResult::Kind::kDone: FinishSuspended(lock, std::move(step.status), Runner::kWorker); return;
    case StepResult::Kind::kSuspended: suspended_wake_ = step.wake_at; return;
    case StepResult::Kind::kResumeComing: resume_coming_ = true; return;
    case StepResult::Kind::kBlocks: break;  // a start's answer only, never a poll's
  }
}

void Stream::FinishLocked(TaskStatus failure) {
  if (!failure.ok()) {
    Log(LogLevel::kError, "{} (error {})", failure.message, failure.code);
    if (failure_.ok()) failure_ = std::move(failure);
  }
  ++finished_;
  finished_seen_.store(finished_, std::memory_order_release);
  if (!sync_targets_.empty() && *sync_targets_.begin() <= finished_) work_done_.notify_all();
  if (room_waiters_ != 0 && Unfinished() <= RoomMark(QueueDepth())) room_ready_.notify_all();
}

void Stream::RunWorker() {
  std::unique_lock lock(mutex_);
  for (;;) {
    worker_alarm_ = Clock::time_point::min();  // awake: nobody needs to wake it
    const Runner runner = runner_.load(std::memory_order_relaxed);
    if (runner == Runner::kNone && (!queue_.empty() || !InboxEmpty())) {
      runner_.store(Runner::kWorker, std::memory_order_relaxed);
      RunTasks(lock, /*may_block=*/true);
      continue;
    }
    if (runner == Runner::kSuspended && !resume_coming_ &&
        (stop_.stop_requested() || Clock::now() >= suspended_wake_)) {
      PollSuspended(lock);
      continue;
    }
    if (runner == Runner::kNone && closing_) {  // and nothing is queued: launches now drop
      worker_exited_ = true;
      work_done_.notify_all();
      return;
    }
    if (runner == Runner::kNone) {  // idle: a next task may be about to come
      const uint64_t seen = taken_;
      lock.unlock();
      YieldUntil([&] { return enqueued_seen_.load(std::memory_order_acquire) != seen; });
      lock.lock();
      if (runner_.load(std::memory_order_relaxed) != Runner::kNone || !queue_.empty() || !InboxEmpty() || closing_) {
        continue;
      }
    }
    // A suspended task with a wake time is polled then; one without (it warned and has no
    // deadline, or a resume is coming) only on a notify.
    const bool polls = runner == Runner::kSuspended && !resume_coming_ && suspended_wake_ != Clock::time_point::max();
    worker_alarm_ = polls ? suspended_wake_ : Clock::time_point::max();
    if (polls) {
      work_ready_.wait_until(lock, worker_alarm_);
    } else {
      work_ready_.wait(lock);
    }
  }
}

aclError Stream::Synchronize(std::optional<std::chrono::milliseconds> timeout) {
  if (t_worker_of == this) {  // it would wait for the task it is running: forever
    return Fail(ACL_ERROR_RT_PARAM_INVALID,
                "synchronizing a stream from a host function running on that same stream would wait for itself "
                "forever; synchronize from another thread, or record an event and wait for it elsewhere");
  }
  const uint64_t target = enqueued_seen_.load(std::memory_order_acquire);
  std::unique_lock lock(mutex_);
  auto done = [&] { return finished_ >= target; };
  // Yield first only for the last task: with more still queued (a launch loop that ran ahead of
  // its stream) the wait is long, and each yield would take the CPU from the very worker that
  // runs them (bound to the same CPU, as mpirun binds a rank).
  if (!done() && target - finished_ <= 1) {
    lock.unlock();
    YieldUntil([&] { return finished_seen_.load(std::memory_order_acquire) >= target; });
    lock.lock();
  }
  auto registered = sync_targets_.insert(target);
  bool finished_in_time = true;
  if (timeout) {
    finished_in_time = work_done_.wait_for(lock, *timeout, done);
  } else {
    work_done_.wait(lock, done);
  }
  sync_targets_.erase(registered);
  if (!finished_in_time) {
    return Fail(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
                "aclrtSynchronizeStreamWithTimeout: {} earlier tasks still pending after {} ms; the stream stays "
                "usable",
                target - finished_, timeout->count());
  }
  if (failure_.ok()) return ACL_SUCCESS;
  SetRecentErrorQuiet(fmt::format("{} (error {})", failure_.message, failure_.code));
  return failure_.code;
}

bool Stream::Idle() const {
  const uint64_t enqueued = enqueued_seen_.load(std::memory_order_acquire);
  std::lock_guard lock(mutex_);
  return finished_ >= enqueued;
}

void Stream::Close() {
  {
    std::lock_guard lock(mutex_);
    std::lock_guard inbox(inbox_mutex_);
    closing_ = true;
    if (!worker_.joinable()) worker_exited_ = true;
  }
  work_ready_.notify_all();
  room_ready_.notify_all();
}

void Stream::Abort(TaskStatus reason) {
  std::lock_guard lock(mutex_);
  if (failure_.ok()) failure_ = std::move(reason);
  {
    std::lock_guard inbox(inbox_mutex_);
    closing_ = true;
  }
  if (!worker_.joinable()) worker_exited_ = true;
  // Under the lock: a worker that checked for a stop and is about to sleep cannot miss it.
  stop_.request_stop();
  work_ready_.notify_all();
  room_ready_.notify_all();
}

void Stream::Join() {
  // worker_ is only touched under mutex_ (a launch may start the worker at any time). Joining
  // under it is safe once the worker has left RunWorker: it needs the lock no more.
  std::unique_lock lock(mutex_);
  if (!worker_.joinable() || worker_.get_id() == std::this_thread::get_id()) return;
  work_done_.wait(lock, [&] { return worker_exited_ || !worker_.joinable(); });
  if (worker_.joinable()) worker_.join();  // another Join may have joined it while we waited
}

size_t Stream::BlockedSynchronizers() const {
  std::lock_guard lock(mutex_);
  return sync_targets_.size();
}

int Stream::BlockedLaunches() const {
  std::lock_guard lock(mutex_);
  return room_waiters_;
}

bool Stream::WorkerExited() const {
  std::lock_guard lock(mutex_);
  return worker_exited_;
}

}  // namespace distbarrier::runtime
