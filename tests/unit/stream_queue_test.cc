// A stream's bounded queue (DISTBARRIER_STREAM_QUEUE_DEPTH). The depth is read once per
// process, so these cases live in their own program, every one setting the same small depth
// before anything reads it (in stream_test, other cases' streams read the default first).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "runtime/stream.h"

namespace distbarrier::runtime {
namespace {

constexpr int kTestQueueDepth = 8;  // a launch into a full queue waits until 2 finished

void SetTestQueueDepth() {
  setenv("DISTBARRIER_STREAM_QUEUE_DEPTH", std::to_string(kTestQueueDepth).c_str(), 1);
  ASSERT_EQ(Stream::QueueDepth(), static_cast<uint64_t>(kTestQueueDepth));
}

Task BlockingTask(std::shared_future<void> gate, std::atomic<int>* finished) {
  Task task;
  task.run = [gate, finished](const std::stop_token&) {
    gate.wait();
    finished->fetch_add(1);
    return TaskStatus::Ok();
  };
  return task;
}

// A stream whose queue is full of tasks held at one gate until `open` is set.
struct FullQueue {
  FullQueue() {
    SetTestQueueDepth();
    for (int i = 0; i < kTestQueueDepth; ++i) stream.Enqueue(BlockingTask(gate, &finished));
  }
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  std::atomic<int> finished{0};
  Stream stream{0};  // last: destroyed first, while the tasks' gate and counter still exist
};

// With the queue full, one more launch waits until one has finished: it cannot return
// while the first task is held at its gate.
TEST(StreamQueueTest, ALaunchIntoAFullQueueWaitsForRoom) {
  FullQueue full;
  Stream& stream = full.stream;
  std::atomic<bool> returned{false};
  int finished_when_it_returned = -1;
  std::thread launcher([&] {
    stream.Enqueue(BlockingTask(full.gate, &full.finished));
    finished_when_it_returned = full.finished.load();
    returned = true;
  });
  while (stream.BlockedLaunches() == 0 && !returned.load()) std::this_thread::yield();
  EXPECT_FALSE(returned.load()) << "a launch into the full queue did not wait for room";
  full.open.set_value();
  launcher.join();
  EXPECT_GE(finished_when_it_returned, kTestQueueDepth / 4);
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
  EXPECT_EQ(full.finished.load(), kTestQueueDepth + 1);
}

// Room means a quarter of the queue, not one task: a launch waiting for room is not woken
// for every task that finishes (a context switch per task of a launch loop running ahead).
// Each task has its own gate; a task that started proves its predecessor's finish was counted.
TEST(StreamQueueTest, ALaunchWaitingForRoomWaitsUntilAQuarterOfTheQueueFinished) {
  SetTestQueueDepth();
  constexpr int kHeld = kTestQueueDepth + 1;
  std::vector<std::promise<void>> open(kHeld);
  std::vector<std::promise<void>> started(kHeld);
  std::atomic<int> finished{0};
  Stream stream(0);  // after the promises: destroyed first, while its tasks can still use them
  auto gated = [&](int i) {
    Task task;
    task.run = [&, i, gate = open[i].get_future().share()](const std::stop_token&) {
      started[i].set_value();
      gate.wait();
      finished.fetch_add(1);
      return TaskStatus::Ok();
    };
    return task;
  };
  for (int i = 0; i < kTestQueueDepth; ++i) stream.Enqueue(gated(i));
  std::atomic<bool> returned{false};
  int finished_when_it_returned = -1;
  std::thread launcher([&] {
    stream.Enqueue(gated(kTestQueueDepth));
    finished_when_it_returned = finished.load();
    returned = true;
  });
  while (stream.BlockedLaunches() == 0) std::this_thread::yield();
  for (int i = 0; i + 1 < kTestQueueDepth / 4; ++i) {
    open[i].set_value();
    started[i + 1].get_future().wait();  // task i's finish was counted
    // A launch woken too early needs a moment to return: give it that chance (this cannot make
    // the case fail when the stream is right, only catch a wrong one more often).
    for (int yields = 0; yields < 10000 && !returned.load(); ++yields) std::this_thread::yield();
    EXPECT_FALSE(returned.load()) << "the launch took room after " << i + 1 << " of " << kTestQueueDepth
                                  << " tasks finished";
  }
  open[kTestQueueDepth / 4 - 1].set_value();
  launcher.join();  // returns now: a quarter finished
  EXPECT_EQ(finished_when_it_returned, kTestQueueDepth / 4);
  for (int i = kTestQueueDepth / 4; i < kHeld; ++i) open[i].set_value();
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);
  EXPECT_EQ(finished.load(), kHeld);
}

// A host task launching onto its own full stream would wait for itself: it does not wait.
TEST(StreamQueueTest, ATaskLaunchingOntoItsOwnFullStreamDoesNotWait) {
  SetTestQueueDepth();
  Stream stream(0);
  std::atomic<int> ran{0};
  Task launcher;
  launcher.run = [&](const std::stop_token&) {
    for (int i = 0; i < 2 * kTestQueueDepth; ++i) {
      Task more;
      more.run = [&](const std::stop_token&) {
        ran.fetch_add(1);
        return TaskStatus::Ok();
      };
      stream.Enqueue(std::move(more));
    }
    return TaskStatus::Ok();
  };
  stream.Enqueue(std::move(launcher));
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);  // the launcher ran: all its launches are queued
  EXPECT_EQ(stream.Synchronize(), ACL_SUCCESS);  // and now they ran too
  EXPECT_EQ(ran.load(), 2 * kTestQueueDepth);
}

// Aborting the stream releases a launch waiting for room; the task is dropped, not lost.
TEST(StreamQueueTest, AbortReleasesALaunchWaitingForRoom) {
  FullQueue full;
  Stream& stream = full.stream;
  std::promise<TaskStatus> dropped;
  std::thread launcher([&] {
    Task late;
    late.run = [](const std::stop_token&) { return TaskStatus::Ok(); };
    late.on_drop = [&](const TaskStatus& cause) { dropped.set_value(cause); };
    stream.Enqueue(std::move(late));
  });
  while (stream.BlockedLaunches() == 0) std::this_thread::yield();
  stream.Abort({ACL_ERROR_RT_STREAM_ABORT, "test abort"});
  EXPECT_EQ(dropped.get_future().get().code, ACL_ERROR_RT_STREAM_ABORT);
  launcher.join();
  full.open.set_value();
}

}  // namespace
}  // namespace distbarrier::runtime
