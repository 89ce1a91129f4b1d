// What the runtime tests share: gates that host functions wait on until the test opens them,
// and a fixture that owns everything a host function may touch. Streams are blocked with
// these gates, never with sleeps, and nothing asserts on timing.
#pragma once

#include <atomic>
#include <future>
#include <list>
#include <mutex>

#include "acl/acl.h"
#include "test_support.h"

namespace distbarrier::testing {

// A gate a host function waits on until the test opens it.
class Gate {
 public:
  Gate() : future_(promise_.get_future().share()) {}
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  void Open() {
    std::lock_guard lock(mutex_);
    if (!opened_) {
      opened_ = true;
      promise_.set_value();
    }
  }
  void Wait() const { future_.wait(); }

 private:
  std::mutex mutex_;
  bool opened_ = false;
  std::promise<void> promise_;
  std::shared_future<void> future_;
};

// What a blocking host function gets: wait on `gate`, then set `done` (when given).
struct Blocker {
  Gate* gate = nullptr;
  std::atomic<bool>* done = nullptr;
  Gate* started = nullptr;  // opened by the host function as it starts (when given)
};

inline void WaitOnGate(void* arg) {
  auto* blocker = static_cast<Blocker*>(arg);
  if (blocker->started != nullptr) blocker->started->Open();
  blocker->gate->Wait();
  if (blocker->done != nullptr) blocker->done->store(true);
}

inline void SetFlag(void* arg) {
  static_cast<std::atomic<bool>*>(arg)->store(true);
}

// Everything a host function may touch lives in the fixture, so it outlives the streams:
// TearDown opens every gate before aclFinalize joins the stream workers, even when an
// assertion ended the test early.
class StreamTest : public RuntimeTest {
 protected:
  void TearDown() override {
    for (Gate& gate : gates_) gate.Open();
    RuntimeTest::TearDown();
  }

  Gate& NewGate() { return gates_.emplace_back(); }
  std::atomic<bool>& NewFlag() { return flags_.emplace_back(false); }
  Blocker& NewBlocker(Gate& gate, std::atomic<bool>* done = nullptr) {
    return blockers_.emplace_back(Blocker{&gate, done});
  }

  // Enqueues on `stream` a host function that blocks until the returned gate opens and then
  // sets *done (when given).
  Gate& Block(aclrtStream stream, std::atomic<bool>* done = nullptr) {
    Gate& gate = NewGate();
    EXPECT_ACL_OK(aclrtLaunchHostFunc(stream, WaitOnGate, &NewBlocker(gate, done)));
    return gate;
  }

  std::list<Gate> gates_;
  std::list<std::atomic<bool>> flags_;
  std::list<Blocker> blockers_;
};

using DeviceTest = RuntimeTest;
using ContextTest = StreamTest;
using EventTest = StreamTest;
using MemoryTest = StreamTest;
using FailedStreamTest = StreamTest;
using FinalizeTest = StreamTest;

}  // namespace distbarrier::testing
