// An event: a point in a stream's work that the host or another stream can wait for.
// Each record gets an id; waiters wait for the latest record made before they asked.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>

#include "runtime/task.h"

namespace distbarrier::runtime {

class Event {
 public:
  // A new record; returns its id (1, 2, ...).
  uint64_t NewRecord();
  uint64_t LatestRecord() const;
  // The record `id` has completed (or failed) at `time_ns` (steady clock).
  void Complete(uint64_t id, const TaskStatus& status, int64_t time_ns);

  // Waits until record `id` completed; returns its status. Wakes with an abort on `stop`.
  TaskStatus WaitFor(uint64_t id, const std::stop_token& stop);
  bool IsComplete(uint64_t id) const;

  // Time of the latest completed record, when it is also the latest record made.
  std::optional<int64_t> CompletedTime() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable_any completed_cv_;
  uint64_t recorded_ = 0;
  uint64_t completed_ = 0;
  TaskStatus status_;
  int64_t time_ns_ = 0;
};

}  // namespace distbarrier::runtime
