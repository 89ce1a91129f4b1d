#include "runtime/stream.h"

#include <sched.h>

#include "common/error.h"
#include "common/log.h"

namespace distbarrier::runtime {
namespace {
// Before sleeping on a condition variable, the worker (waiting for work) and a synchronizer
// (waiting for the worker) yield this many times watching the counter they wait for: when
// the other side is about to come, a hand-off costs a yield instead of two futex calls and a
// wake-up. Bounded, so an idle stream still sleeps.
constexpr int kYieldsBeforeSleep = 50;

template <typename Ready>
void YieldUntil(Ready ready) {
  for (int i = 0; i < kYieldsBeforeSleep && !ready(); ++i) sched_yield();
}
}  // namespace

Stream::~Stream() {
  Abort({ACL_ERROR_RT_STREAM_ABORT, "stream destroyed"});
  Join();
}

void Stream::Enqueue(Task task) {
  {
    std::unique_lock lock(mutex_);
    if (closing_) {  // destroyed or aborted: nobody will run it
      lock.unlock();
      if (task.on_drop) task.on_drop({ACL_ERROR_RT_STREAM_ABORT, "stream destroyed or aborted"});
      return;
    }
    queue_.push_back(std::move(task));
    ++enqueued_;
    enqueued_seen_.store(enqueued_, std::memory_order_release);
    if (!worker_.joinable()) worker_ = std::thread([this] { RunWorker(); });
  }
  work_ready_.notify_one();
}

void Stream::RunWorker() {
  for (;;) {
    Task task;
    TaskStatus drop_cause;
    {
      std::unique_lock lock(mutex_);
      if (queue_.empty() && !closing_) {
        const uint64_t taken = finished_;
        lock.unlock();
        YieldUntil([&] { return enqueued_seen_.load(std::memory_order_acquire) > taken; });
        lock.lock();
      }
      work_ready_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty()) {
        worker_exited_ = true;
        work_done_.notify_all();
        return;
      }
      task = std::move(queue_.front());
      queue_.pop_front();
      drop_cause = failure_;
    }
    if (drop_cause.ok() && !stop_.stop_requested()) {
      TaskStatus status = task.run(stop_.get_token());
      if (!status.ok()) {
        Log(LogLevel::kError, "{} (error {})", status.message, status.code);
        std::lock_guard lock(mutex_);
        if (failure_.ok()) failure_ = std::move(status);
      }
    } else {
      if (drop_cause.ok()) drop_cause = {ACL_ERROR_RT_STREAM_ABORT, "stream aborted"};
      if (task.on_drop) task.on_drop(drop_cause);
    }
    bool wake;
    {
      std::lock_guard lock(mutex_);
      ++finished_;
      finished_seen_.store(finished_, std::memory_order_release);
      wake = !sync_targets_.empty() && *sync_targets_.begin() <= finished_;
    }
    if (wake) work_done_.notify_all();
  }
}

aclError Stream::Synchronize(std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock lock(mutex_);
  const uint64_t target = enqueued_;
  auto done = [&] { return finished_ >= target; };
  if (!done()) {
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
  std::lock_guard lock(mutex_);
  return finished_ >= enqueued_;
}

void Stream::Close() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    if (!worker_.joinable()) worker_exited_ = true;
  }
  work_ready_.notify_all();
}

void Stream::Abort(TaskStatus reason) {
  {
    std::lock_guard lock(mutex_);
    if (failure_.ok()) failure_ = std::move(reason);
    closing_ = true;
    if (!worker_.joinable()) worker_exited_ = true;
  }
  stop_.request_stop();
  work_ready_.notify_all();
}

void Stream::Join() {
  std::lock_guard lock(join_mutex_);
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

bool Stream::WorkerExited() const {
  std::lock_guard lock(mutex_);
  return worker_exited_;
}

}  // namespace distbarrier::runtime
