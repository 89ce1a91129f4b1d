#include "runtime/event.h"

namespace distbarrier::runtime {

uint64_t Event::NewRecord(const void* stream) {
  std::lock_guard lock(mutex_);
  recorded_on_ = stream;
  return ++recorded_;
}

uint64_t Event::LatestRecord() const {
  std::lock_guard lock(mutex_);
  return recorded_;
}

void Event::Complete(uint64_t id, const TaskStatus& status, int64_t time_ns) {
  {
    std::lock_guard lock(mutex_);
    if (id <= completed_) return;  // an older record finishing late on another stream
    completed_ = id;
    status_ = status;
    time_ns_ = time_ns;
  }
  completed_cv_.notify_all();
}

TaskStatus Event::WaitFor(uint64_t id, const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  if (!completed_cv_.wait(lock, stop, [&] { return completed_ >= id; })) {
    return {ACL_ERROR_RT_STREAM_ABORT, "stream aborted while waiting for an event"};
  }
  return status_;
}

std::pair<uint64_t, const void*> Event::LatestRecordAndStream() const {
  std::lock_guard lock(mutex_);
  return {recorded_, recorded_on_};
}

bool Event::IsComplete(uint64_t id) const {
  std::lock_guard lock(mutex_);
  return completed_ >= id;
}

std::optional<int64_t> Event::CompletedTime() const {
  std::lock_guard lock(mutex_);
  if (recorded_ == 0 || completed_ < recorded_ || !status_.ok()) return std::nullopt;
  return time_ns_;
}

}  // namespace distbarrier::runtime
