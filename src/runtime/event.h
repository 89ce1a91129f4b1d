// An event: a point in a stream's work that the host or another stream can wait for.
// Each record gets an id; waiters wait for the latest record made before they asked.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <utility>

#include "runtime/task.h"

namespace distbarrier::runtime {

class Event {
 public:
  // A new record, queued on `stream`; returns its id (1, 2, ...).
  uint64_t NewRecord(const void* stream);
  uint64_t LatestRecord() const;
  // The latest record and the stream it was queued on (null before the first record).
  std::pair<uint64_t, const void*> LatestRecordAndStream() const;
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
  const void* recorded_on_ = nullptr;  // compared only, never dereferenced
  uint64_t completed_ = 0;
  TaskStatus status_;
  int64_t time_ns_ = 0;
};

}  // namespace distbarrier::runtime
