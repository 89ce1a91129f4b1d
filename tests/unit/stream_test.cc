// Streams that are not tied to their worker thread: suspendable tasks, resumes from other
// threads (also before the task finished suspending), tasks run inline by the thread that
// launches or resumes, the worker's polls at a suspended task's wake time and on abort. No
// sleeps: every hand-off is awaited through a promise or a stream synchronize.
#include "runtime/stream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace distbarrier::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A task that suspends at start and tells the test how to resume it; what it answers to
// polls is set by the test.
class ManualTask final : public SuspendableTask {
 public:
  struct Shared {
    std::promise<Resumer> resumer;
    std::promise<void> polled_once;
    std::atomic<int> polls{0};
    std::atomic<bool> saw_stop{false};
    std::thread::id started_on;
    bool started_on_own_thread = false;  // Resumer::OnTheStreamsOwnThread at the start
    Clock::time_point wake_at = Clock::time_point::max();
    // What a poll answers; kSuspended re-arms with `wake_at`.
    StepResult::Kind poll_answer = StepResult::Kind::kSuspended;
    TaskStatus poll_status;
  };
  explicit ManualTask(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  StepResult Step(StepCall call, const Resumer& resumer, const std::stop_token& stop) override {
    if (call == StepCall::kStart) {
      shared_->started_on = std::this_thread::get_id();
      shared_->started_on_own_thread = resumer.OnTheStreamsOwnThread();
      shared_->resumer.set_value(resumer);
      return StepResult::Suspended(shared_->wake_at);
    }
    if (stop.stop_requested()) shared_->saw_stop = true;
    if (shared_->polls.fetch_add(1) == 0) shared_->polled_once.set_value();
    switch (shared_->poll_answer) {
      case StepResult::Kind::kDone: return StepResult::Done(shared_->poll_status);
      case StepResult::Kind::kResumeComing: return StepResult::ResumeComing();
      case StepResult::Kind::kSuspended:
      case StepResult::Kind::kBlocks: break;
    }
    return StepResult::Suspended(Clock::time_point::max());
  }

 private:
  std::shared_ptr<Shared> shared_;
};

Task Manual(std::shared_ptr<ManualTask::Shared> shared, bool may_run_inline = false) {
  Task task;
  task.suspendable = std::make_unique<ManualTask>(std::move(shared));
  task.may_run_inline = may_run_inline;
  return task;
}

// Holds every stream worker started meanwhile at its start, until Release. A fresh stream's new
// worker may otherwise take the stream's first task before the launching thread does (the
// worker looks for work as it starts), so a case that checks that a launch ran its task inline
// holds the workers. Declare it after the streams: it releases them as it goes, before the
// streams join their workers.
class WorkersHeldAtStart {
 public:
  WorkersHeldAtStart() {
    SetHeld(true);
    Stream::SetThreadStarterForTesting(Start);
  }
  ~WorkersHeldAtStart() {
    Release();
    Stream::SetThreadStarterForTesting(nullptr);
  }
  WorkersHeldAtStart(const WorkersHeldAtStart&) = delete;
  WorkersHeldAtStart& operator=(const WorkersHeldAtStart&) = delete;

  void Release() { SetHeld(false); }

 private:
  struct Gate {
    std::mutex mutex;
    std::condition_variable opened;
    bool held = false;
  };
  static Gate& TheGate() {
    static Gate gate;
    return gate;
  }
  static void SetHeld(bool held) {
    Gate& gate = TheGate();
    std::lock_guard lock(gate.mutex);
    gate.held = held;
    gate.opened.notify_all();
  }
  static std::thread Start(std::function<void()> body) {
    return std::thread([body = std::move(body)] {
      Gate& gate = TheGate();
      {
        std::unique_lock lock(gate.mutex);
        gate.opened.wait(lock, [&] { return !gate.held; });
      }
      body();
    });
  }
};

// A plain task that records the thread it ran on.
Task RecordThread(std::thread::id* ran_on, bool may_run_inline) {
  Task task;
  task.run = [ran_on](const std::stop_token&) {
    *ran_on = std::this_thread::get_id();
    return TaskStatus::Ok();
  };
  task.may_run_inline = may_run_inline;
  return task;
}

TEST(StreamSuspendTest, ASuspendedTaskHoldsTheStreamUntilResumed) {
  Stream stream(0);
  auto shared = std::make_shared<ManualTask::Shared>();
  std::thread::id after;
  stream.Enqueue(Manual(shared));
  stream.Enqueue(RecordThread(&after, /*may_run_inline=*/false));
  Resumer resumer = shared->resumer.get_future().get();
  EXPECT_FALSE(stream.Idle());
  EXPECT_EQ(stream.Synchronize(0ms), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  EXPECT_EQ(after, std::thread::id());  // the task behind it has not run
  resumer.Resume(TaskStatus::Ok());
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
  EXPECT_NE(after, std::thread::id());
  EXPECT_EQ(shared->polls.load(), 0);  // no wake time: the worker never polled
}

TEST(StreamSuspendTest, AnInlineTaskOnAnIdleStreamRunsOnTheLaunchingThread) {
  Stream stream(0);
  WorkersHeldAtStart held;
  auto shared = std::make_shared<ManualTask::Shared>();
  stream.Enqueue(Manual(shared, /*may_run_inline=*/true));
  EXPECT_EQ(shared->started_on, std::this_thread::get_id());
  shared->resumer.get_future().get().Resume(TaskStatus::Ok());
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
}

// A launch onto an idle stream starts its task at once, without the inbox (Stream::RunIfIdle):
// the task still counts as enqueued while it runs, and a launch from another thread meanwhile
// waits its turn behind it and runs on the thread that holds the stream.
TEST(StreamSuspendTest, AStartRunAtOnceOnAnIdleStreamCountsAsQueuedAndTheLaunchesBehindItWait) {
  Stream stream(0);
  WorkersHeldAtStart held;
  std::promise<void> started;
  std::promise<void> go;
  std::shared_future<void> go_seen = go.get_future().share();
  Task first;
  first.may_run_inline = true;
  first.run = [&started, go_seen](const std::stop_token&) {
    started.set_value();
    go_seen.wait();
    return TaskStatus::Ok();
  };
  std::thread::id launcher_id;
  std::thread launcher([&] {
    launcher_id = std::this_thread::get_id();
    stream.Enqueue(std::move(first));
  });
  started.get_future().wait();
  EXPECT_FALSE(stream.Idle());
  EXPECT_EQ(stream.Synchronize(0ms), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  std::thread::id second_ran_on;
  stream.Enqueue(RecordThread(&second_ran_on, /*may_run_inline=*/true));  // queued: the stream is held
  EXPECT_EQ(second_ran_on, std::thread::id());
  go.set_value();
  launcher.join();
  // The holder went on with the task queued behind its own before its launch returned.
  EXPECT_EQ(second_ran_on, launcher_id);
  EXPECT_TRUE(stream.Idle());
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
}

TEST(StreamSuspendTest, ANonInlineTaskRunsOnTheWorker) {
  Stream stream(0);
  auto shared = std::make_shared<ManualTask::Shared>();
  stream.Enqueue(Manual(shared, /*may_run_inline=*/false));
  shared->resumer.get_future().get().Resume(TaskStatus::Ok());
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
  EXPECT_NE(shared->started_on, std::this_thread::get_id());
}

TEST(StreamSuspendTest, TheResumingThreadRunsTheInlineTasksThatFollowAndLeavesTheOthersToTheWorker) {
  Stream stream(0);
  auto shared = std::make_shared<ManualTask::Shared>();
  std::thread::id inline_ran_on;
  std::thread::id blocking_ran_on;
  stream.Enqueue(Manual(shared, /*may_run_inline=*/true));  // suspended when Enqueue returns
  stream.Enqueue(RecordThread(&inline_ran_on, /*may_run_inline=*/true));
  stream.Enqueue(RecordThread(&blocking_ran_on, /*may_run_inline=*/false));
  Resumer resumer = shared->resumer.get_future().get();
  std::thread::id resumed_on;
  std::thread resuming([&] {
    resumed_on = std::this_thread::get_id();
    resumer.Resume(TaskStatus::Ok());
    // The inline task ran inside Resume, on this thread, before it returned.
    EXPECT_EQ(inline_ran_on, resumed_on);
  });
  resuming.join();
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
  EXPECT_NE(blocking_ran_on, std::thread::id());
  EXPECT_NE(blocking_ran_on, resumed_on);
  EXPECT_NE(blocking_ran_on, std::this_thread::get_id());
}

// A barrier spins only on its stream's own threads: a start that a resuming thread runs may be
// waiting for that very thread's rank.
TEST(StreamSuspendTest, AStartKnowsWhetherItRunsOnItsStreamsOwnThread) {
  Stream stream(0);
  WorkersHeldAtStart held;
  auto launched = std::make_shared<ManualTask::Shared>();
  auto behind = std::make_shared<ManualTask::Shared>();
  auto on_worker = std::make_shared<ManualTask::Shared>();
  stream.Enqueue(Manual(launched, /*may_run_inline=*/true));  // inline: the launching thread
  EXPECT_EQ(launched->started_on, std::this_thread::get_id());
  EXPECT_TRUE(launched->started_on_own_thread);
  held.Release();
  stream.Enqueue(Manual(behind, /*may_run_inline=*/true));  // waits behind the suspended one
  Resumer resumer = launched->resumer.get_future().get();
  std::thread::id resumed_on;
  std::thread resuming([&] {
    resumed_on = std::this_thread::get_id();
    resumer.Resume(TaskStatus::Ok());  // starts `behind` on this thread
  });
  resuming.join();
  EXPECT_EQ(behind->started_on, resumed_on);
  EXPECT_FALSE(behind->started_on_own_thread);
  behind->resumer.get_future().get().Resume(TaskStatus::Ok());
  stream.Enqueue(Manual(on_worker, /*may_run_inline=*/false));
  on_worker->resumer.get_future().get().Resume(TaskStatus::Ok());
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
  EXPECT_NE(on_worker->started_on, std::this_thread::get_id());
  EXPECT_TRUE(on_worker->started_on_own_thread);
}

// A task whose start says the rest blocks (a barrier over processes): it records where each
// step ran; the blocking step waits for the test's go.
class BlocksAfterStart final : public SuspendableTask {
 public:
  struct Shared {
    std::thread::id started_on, blocked_on;
    std::promise<void> blocking;
    std::shared_future<void> go;
  };
  explicit BlocksAfterStart(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  StepResult Step(StepCall call, const Resumer&, const std::stop_token&) override {
    if (call == StepCall::kStart) {
      shared_->started_on = std::this_thread::get_id();
      return StepResult::Blocks();
    }
    EXPECT_EQ(call, StepCall::kBlock);
    shared_->blocked_on = std::this_thread::get_id();
    shared_->blocking.set_value();
    shared_->go.wait();
    return StepResult::Done({ACL_ERROR_RT_PARAM_INVALID, "the blocking rest's result"});
  }

 private:
  std::shared_ptr<Shared> shared_;
};

TEST(StreamSuspendTest, AnInlineStartThatBlocksHandsTheRestToTheWorkerAndTheLaunchReturns) {
  Stream stream(0);
  WorkersHeldAtStart held;
  auto shared = std::make_shared<BlocksAfterStart::Shared>();
  std::promise<void> go;
  shared->go = go.get_future().share();
  Task task;
  task.suspendable = std::make_unique<BlocksAfterStart>(shared);
  task.may_run_inline = true;
  std::thread::id after;
  stream.Enqueue(std::move(task));  // returns: the blocking rest is not run here
  EXPECT_EQ(shared->started_on, std::this_thread::get_id());
  stream.Enqueue(RecordThread(&after, /*may_run_inline=*/true));
  held.Release();  // the worker starts, and takes the blocking rest
  shared->blocking.get_future().get();
  EXPECT_NE(shared->blocked_on, std::this_thread::get_id());  // the worker's
  EXPECT_EQ(after, std::thread::id());                        // still behind it
  go.set_value();
  EXPECT_EQ(stream.Synchronize(), ACL_ERROR_RT_PARAM_INVALID);  // the rest's result is the task's
  EXPECT_EQ(after, std::thread::id());                          // dropped: the stream failed
}

TEST(StreamSuspendTest, AStartThatBlocksOnTheWorkerGoesOnThere) {
  Stream stream(0);
  auto shared = std::make_shared<BlocksAfterStart::Shared>();
  std::promise<void> go;
  go.set_value();
  shared->go = go.get_future().share();
  Task task;
  task.suspendable = std::make_unique<BlocksAfterStart>(shared);
  task.may_run_inline = false;
  stream.Enqueue(std::move(task));
  EXPECT_EQ(stream.Synchronize(), ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_NE(shared->started_on, std::this_thread::get_id());
  EXPECT_EQ(shared->blocked_on, shared->started_on);
}

// The task arranges a resume that comes before the stream has recorded the suspension.
class ResumesBeforeSuspending final : public SuspendableTask {
 public:
  StepResult Step(StepCall call, const Resumer& resumer, const std::stop_token&) override {
    if (call == StepCall::kPoll) return StepResult::Suspended(Clock::time_point::max());
    std::thread other([&] { resumer.Resume({ACL_ERROR_RT_PARAM_INVALID, "resumed early"}); });
    other.join();  // Resume has returned: it found the task still running and left the result
    return StepResult::Suspended(Clock::time_point::max());
  }
};

TEST(StreamSuspendTest, AResumeThatComesBeforeTheSuspensionIsNotLost) {
  for (bool may_run_inline : {false, true}) {
    Stream stream(0);
    Task task;
    task.suspendable = std::make_unique<ResumesBeforeSuspending>();
    task.may_run_inline = may_run_inline;
    stream.Enqueue(std::move(task));
    EXPECT_EQ(stream.Synchronize(), ACL_ERROR_RT_PARAM_INVALID) << "inline " << may_run_inline;
  }
}

TEST(StreamSuspendTest, TheWorkerPollsAtTheWakeTimeAndThePollCanFinishTheTask) {
  Stream stream(0);
  auto shared = std::make_shared<ManualTask::Shared>();
  shared->wake_at = Clock::now();  // due at once
  shared->poll_answer = StepResult::Kind::kDone;
  shared->poll_status = {ACL_ERROR_RT_VECTOR_CORE_TIMEOUT, "timed out in a poll"};
  stream.Enqueue(Manual(shared));
  EXPECT_EQ(stream.Synchronize(), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);
  EXPECT_EQ(shared->polls.load(), 1);
  EXPECT_FALSE(shared->saw_stop.load());
}

TEST(StreamSuspendTest, APollThatFindsAResumeComingStopsPollingAndWaitsForIt) {
  Stream stream(0);
  auto shared = std::make_shared<ManualTask::Shared>();
  shared->wake_at = Clock::now();
  shared->poll_answer = StepResult::Kind::kResumeComing;
  stream.Enqueue(Manual(shared));
  Resumer resumer = shared->resumer.get_future().get();
  shared->polled_once.get_future().get();
  EXPECT_EQ(stream.Synchronize(0ms), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  resumer.Resume(TaskStatus::Ok());
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
  EXPECT_EQ(shared->polls.load(), 1);
}

TEST(StreamSuspendTest, AbortPollsTheSuspendedTaskWithItsStopRequested) {
  auto shared = std::make_shared<ManualTask::Shared>();
  shared->poll_answer = StepResult::Kind::kDone;
  shared->poll_status = {ACL_ERROR_RT_STREAM_ABORT, "aborted while suspended"};
  std::thread::id after;
  Stream stream(0);
  stream.Enqueue(Manual(shared));
  stream.Enqueue(RecordThread(&after, /*may_run_inline=*/false));
  shared->resumer.get_future().get();
  stream.Abort({ACL_ERROR_RT_STREAM_ABORT, "test abort"});
  stream.Join();
  EXPECT_TRUE(stream.WorkerExited());
  EXPECT_TRUE(shared->saw_stop.load());
  EXPECT_EQ(after, std::thread::id());  // dropped, not run
  EXPECT_EQ(stream.Synchronize(), ACL_ERROR_RT_STREAM_ABORT);
}

// A task whose start resumes another stream: the resume runs after the step returns, on the
// same thread (a loop, not a recursion), and finishes the other stream's suspended task.
class ResumesAnother final : public SuspendableTask {
 public:
  ResumesAnother(Resumer other, std::vector<int>* order) : other_(other), order_(order) {}
  StepResult Step(StepCall, const Resumer&, const std::stop_token&) override {
    other_.Resume(TaskStatus::Ok());
    order_->push_back(1);  // the other stream has not moved yet
    return StepResult::Done(TaskStatus::Ok());
  }

 private:
  Resumer other_;
  std::vector<int>* order_;
};

TEST(StreamSuspendTest, AResumeCausedByAStepRunsWhenTheStepReturns) {
  Stream waiting(0);
  Stream driving(1);
  WorkersHeldAtStart held;  // both launches run inline
  auto shared = std::make_shared<ManualTask::Shared>();
  std::vector<int> order;
  waiting.Enqueue(Manual(shared, /*may_run_inline=*/true));  // suspended when Enqueue returns
  Task follow;
  follow.run = [&order](const std::stop_token&) {
    order.push_back(2);
    return TaskStatus::Ok();
  };
  follow.may_run_inline = true;
  waiting.Enqueue(std::move(follow));
  Task step;
  step.suspendable = std::make_unique<ResumesAnother>(shared->resumer.get_future().get(), &order);
  step.may_run_inline = true;
  driving.Enqueue(std::move(step));  // runs inline here, and so does the resumed stream
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(waiting.Synchronize(), ACL_SUCCESS);
  EXPECT_EQ(driving.Synchronize(), ACL_SUCCESS);
}

// The last reference dropped inside one of the stream's own tasks: the worker cannot join
// itself (it used to terminate the program); it finishes and deletes the stream as it exits.
TEST(StreamReleaseTest, TheLastReferenceDroppedByItsOwnTaskDoesNotTerminate) {
  auto holder = std::make_unique<std::shared_ptr<Stream>>(Stream::Create(0));
  Stream* stream = holder->get();
  std::promise<void> go;  // both tasks are queued before the stream can go away
  std::promise<void> released;
  std::atomic<bool> later_ran{false};
  std::promise<TaskStatus> later_dropped;
  Task release;
  release.run = [&](const std::stop_token&) {
    go.get_future().wait();
    holder->reset();  // the last reference
    released.set_value();
    return TaskStatus::Ok();
  };
  Task later;
  later.run = [&](const std::stop_token&) {
    later_ran = true;
    return TaskStatus::Ok();
  };
  later.on_drop = [&](const TaskStatus& cause) { later_dropped.set_value(cause); };
  stream->Enqueue(std::move(release));
  stream->Enqueue(std::move(later));
  go.set_value();
  released.get_future().wait();
  // The released stream is aborted: what was queued behind is dropped, not run.
  EXPECT_EQ(later_dropped.get_future().get().code, ACL_ERROR_RT_STREAM_ABORT);
  EXPECT_FALSE(later_ran.load());
}

}  // namespace
}  // namespace distbarrier::runtime
