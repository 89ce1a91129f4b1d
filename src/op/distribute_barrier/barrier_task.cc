#include "op/distribute_barrier/barrier_task.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <span>
#include <stop_token>

#include "comm/diagnosis/flight_recorder.h"
#include "common/block_pool.h"
#include "common/cpus.h"
#include "common/deadline.h"
#include "common/env.h"
#include "common/log.h"
#include "common/trace.h"

namespace distbarrier::op {
namespace {

using comm::Clock;

double Milliseconds(Clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

double Microseconds(Clock::time_point time) {
  return std::chrono::duration<double, std::micro>(time.time_since_epoch()).count();
}

// One span per rank and barrier, from arrival to release, on a track per rank (tid) inside
// a track group per communicator (pid); names the tracks on first use. Across hosts the times
// are on host 0's clock (this host's agent measured the offset; the "clock" record says how
// well), so the traces of all hosts line up.
void TraceBarrier(TraceWriter& trace, const comm::Group& group, int rank, uint64_t seq, Clock::time_point arrive,
                  Clock::time_point release, comm::WaitResult result) {
  const int pid = group.Ordinal();
  const std::string name = JsonEscape(group.Name());
  if (seq == 1) {
    if (rank == 0) {
      trace.Emit(fmt::format(R"J({{"ph":"M","name":"process_name","pid":{},"args":{{"name":"group {}"}}}})J", pid, name));
    }
    trace.Emit(fmt::format(R"J({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":"rank {} (device {})"}}}})J",
                           pid, rank, rank, group.DeviceOfRank(rank)));
  }
  Clock::duration offset{};
  if (group.AcrossHosts()) {
    const comm::BarrierWindow& window = group.Window();
    offset = std::chrono::nanoseconds(window.ClockOffsetNs());
    if (window.ClockErrorNs() >= 0 && group.ClaimClockReport(rank)) {
      trace.Emit(fmt::format(
          R"J({{"ph":"M","name":"clock","pid":{},"tid":{},"args":{{"host":{},"offset_to_host0_ns":{},"error_ns":{}}}}})J",
          pid, rank, window.LocalHost(), window.ClockOffsetNs(), window.ClockErrorNs()));
    }
  }
  const char* outcome = result == comm::WaitResult::kReleased   ? "released"
                        : result == comm::WaitResult::kTimedOut ? "timed out"
                        : result == comm::WaitResult::kPeerDied ? "peer died"
                                                                 : "aborted";
  trace.Emit(fmt::format(
      R"J({{"ph":"X","name":"barrier #{}","cat":"distbarrier","pid":{},"tid":{},"ts":{:.3f},"dur":{:.3f},)J"
      R"J("args":{{"group":"{}","seq":{},"rank":{},"device":{},"outcome":"{}"}}}})J",
      seq, pid, rank, Microseconds(arrive + offset), Microseconds(release) - Microseconds(arrive), name, seq, rank,
      group.DeviceOfRank(rank), outcome));
}

// "rank 3 (pid 1234) died" / "ranks 3 (pid 1234), 5 (pid 1240) died"; across hosts each rank
// of another host also names its host.
std::string DescribeDead(const comm::Group& group, const std::vector<int>& dead) {
  const comm::BarrierWindow& window = group.Window();
  std::vector<std::string> parts;
  for (int rank : dead) {
    const std::string host = group.HostOfRank(rank);
    parts.push_back(host.empty() ? fmt::format("{} (pid {})", rank, window.Pid(rank))
                                 : fmt::format("{} (pid {} on {})", rank, window.Pid(rank), host));
  }
  return fmt::format("{} {} died", dead.size() == 1 ? "rank" : "ranks", fmt::join(parts, ", "));
}

// "1, 3 (communicator destroyed)": missing ranks, saying which were destroyed (HcclCommDestroy);
// across hosts, a rank of another host names its host, and whether that host last said the
// rank had arrived (then it is the exchange between hosts that is late, not the rank).
std::string DescribeMissing(const comm::Group& group, uint64_t seq, const std::vector<int>& missing) {
  const comm::BarrierWindow& window = group.Window();
  std::vector<std::string> parts;
  for (int rank : missing) {
    std::vector<std::string> notes;
    if (const std::string host = group.HostOfRank(rank); !host.empty()) {
      notes.push_back(window.ReportedSequence(rank) >= seq ? fmt::format("on {}, which reports it arrived", host)
                                                           : fmt::format("on {}", host));
    }
    if (window.Destroyed(rank)) notes.push_back("communicator destroyed");
    parts.push_back(notes.empty() ? std::to_string(rank) : fmt::format("{} ({})", rank, fmt::join(notes, ", ")));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string DescribeTimeout(std::optional<std::chrono::microseconds> timeout) {
  if (!timeout) return "none";
  return fmt::format("{:.3f} ms", std::chrono::duration<double, std::milli>(*timeout).count());
}

}  // namespace

void ApplyEnvironmentDefaults(BarrierPlan& plan) {
  using std::chrono::milliseconds;
  const std::optional<milliseconds> timeout = EnvDuration("DISTBARRIER_TIMEOUT_MS", milliseconds(1));
  if (timeout && timeout->count() > 0) plan.default_timeout = *timeout;
  const std::optional<milliseconds> warn = EnvDuration("DISTBARRIER_WARN_S", std::chrono::seconds(1));
  plan.warn_after = warn && warn->count() > 0 ? *warn : std::chrono::seconds(30);
}

std::variant<std::vector<int>, std::string> ElasticRequiredRanks(const int32_t* info, int world_size,
                                                                 int my_rank) {
  const int32_t is_elastic = info[0];
  const int32_t rank_num_after = info[1];
  const int32_t* table1 = info + 4;
  if (is_elastic == 0) {
    std::vector<int> all(static_cast<size_t>(world_size));
    for (int rank = 0; rank < world_size; ++rank) all[rank] = rank;
    return all;
  }
  if (is_elastic != 1) return fmt::format("elasticInfo[0] (isElastic) is {}, expected 0 or 1", is_elastic);
  if (rank_num_after < 1 || rank_num_after > world_size) {
    return fmt::format("elasticInfo[1] (rankNumAfter) is {}, expected 1..{}", rank_num_after, world_size);
  }
  std::vector<int> required;
  for (int rank = 0; rank < world_size; ++rank) {
    const int32_t local = table1[rank];
    if (local == -1) continue;
    if (local < 0 || local >= rank_num_after) {
      return fmt::format("elasticInfo table1[{}] is {}, expected -1 or 0..{}", rank, local, rank_num_after - 1);
    }
    required.push_back(rank);
  }
  if (static_cast<int32_t>(required.size()) != rank_num_after) {
    return fmt::format("elasticInfo lists {} ranks in table1 but rankNumAfter is {}", required.size(),
                       rank_num_after);
  }
  if (table1[my_rank] == -1) {
    return fmt::format("elasticInfo excludes the calling rank {} (table1[{}] is -1)", my_rank, my_rank);
  }
  const int32_t* table2 = table1 + world_size;
  for (int rank : required) {
    if (table2[table1[rank]] != rank) {
      return fmt::format("elasticInfo table2[{}] is {}, expected {} (table1[{}] is {}: table2 must map it back)",
                         table1[rank], table2[table1[rank]], rank, rank, table1[rank]);
    }
  }
  return required;
}

namespace {

using runtime::StepResult;

// How long a barrier's start spins for the release before the stream's worker takes the wait
// over (processes) or it parks (threads): about the round trip of a group across hosts on a
// quiet network (tens of us).
constexpr std::chrono::microseconds kInlineSpin{50};

// One launched barrier of one rank: arrival, wait, result. Ranks of a group in this process
// spin briefly where they fit the CPUs, then park while they wait (ParkedRanks) and are
// finished by the releasing arrival; ranks of a group spread over processes block their
// stream's worker on the window, which other processes release.
class BarrierRun final : public runtime::SuspendableTask {
 public:
  explicit BarrierRun(std::shared_ptr<const BarrierPlan> plan)
      : plan_(std::move(plan)), group_(*plan_->member.group), rank_(plan_->member.rank) {}

  // One barrier is made and freed per launch, often on two threads (the launching one and the
  // stream's worker): recycled blocks (BlockPool), not malloc. Not under AddressSanitizer,
  // which should see every barrier's block freed.
#if !defined(__SANITIZE_ADDRESS__)
  static void* operator new(size_t) { return BlockPool<sizeof(BarrierRun)>::Allocate(); }
  static void operator delete(void* block) { BlockPool<sizeof(BarrierRun)>::Free(block); }
#endif

  StepResult Step(runtime::StepCall call, const runtime::Resumer& resumer, const std::stop_token& stop) override {
    switch (call) {
      case runtime::StepCall::kStart: return Start(resumer);
      case runtime::StepCall::kPoll: return Poll(stop);
      case runtime::StepCall::kBlock: return StepResult::Done(WaitBlocking(stop));
    }
    return StepResult::Done(WaitBlocking(stop));
  }

 private:
  StepResult Start(const runtime::Resumer& resumer) {
    if (std::optional<runtime::TaskStatus> error = Prepare()) return StepResult::Done(std::move(*error));
    comm::BarrierWindow& window = group_.Window();
    seq_ = group_.NextSequence(rank_);
    start_ = Clock::now();
    // Groups up to kSnapshotRanks: the arrival times, if this arrival releases, come from Arrive
    // (read while still in this CPU's cache) rather than from the window after the release.
    std::array<int64_t, kSnapshotRanks> arrivals;
    const size_t snapshot = required_->size() <= kSnapshotRanks && comm::StatsEnabled() ? required_->size() : 0;
    const bool released_here = window.Arrive(rank_, seq_, start_.time_since_epoch().count(), *required_,
                                             std::span<int64_t>(arrivals.data(), snapshot));
    if (released_here) RecordStatistics(std::span<const int64_t>(arrivals.data(), snapshot));
    if (!group_.AllLocal()) {
      // Ranks in other processes: the wait blocks on the window. Often the others are there
      // already or about to be: a short spin here (on the launching thread, when the launch
      // runs this inline; at most kInlineSpin, so a launch stays short) saves handing the
      // barrier to the stream's worker and back.
      if (!released_here && !window.SpinForRelease(seq_, *required_, kInlineSpin, start_)) return StepResult::Blocks();
      return StepResult::Done(Finish(comm::WaitResult::kReleased));
    }
    if (released_here) {
      runtime::TaskStatus mine = Finish(comm::WaitResult::kReleased);
      ResumeParked();
      return StepResult::Done(std::move(mine));
    }
    // Threads: where every rank of the group can be on a CPU at once, the others are likely
    // there or about to be, and a short spin saves parking and the releaser's resume, a hand-off
    // to this stream's worker. More ranks than CPUs: a spinner would hold a CPU a missing rank
    // needs, so they park at once. So does a start that another rank's thread runs (it went on
    // with this stream after a release): it may be the very rank this barrier waits for.
    if (required_->size() <= CpusForThisProcess() && resumer.OnTheStreamsOwnThread() &&
        window.SpinForRelease(seq_, *required_, kInlineSpin, start_)) {
      return StepResult::Done(Finish(comm::WaitResult::kReleased));
    }
    resumer_.emplace(resumer);
    return Park();
  }

  // The stream's worker, at the wake time or on abort.
  StepResult Poll(const std::stop_token& stop) {
    if (!group_.Parked().Take(rank_, seq_)) return StepResult::ResumeComing();
    // This rank holds its barrier again: nobody else will finish it.
    if (group_.Window().Released(seq_)) return StepResult::Done(Finish(comm::WaitResult::kReleased));
    if (stop.stop_requested()) return StepResult::Done(Finish(comm::WaitResult::kStopped));
    const Clock::time_point now = Clock::now();
    if (deadline_ && now >= *deadline_) return StepResult::Done(Finish(comm::WaitResult::kTimedOut));
    if (!deadline_ && !warned_ && now >= warn_at_) {
      warned_ = true;
      Warn();
    }
    return Park();
  }

  // The ranks to wait for and the timeout, read when the barrier runs; an error for a bad
  // elasticInfo table.
  std::optional<runtime::TaskStatus> Prepare() {
    required_ = &group_.AllRanks();
    if (plan_->elastic_info != nullptr) {
      auto parsed = ElasticRequiredRanks(plan_->elastic_info, group_.Size(), rank_);
      if (auto* error = std::get_if<std::string>(&parsed)) {
        return runtime::TaskStatus{ACL_ERROR_RT_PARAM_INVALID,
                                   fmt::format("{}: group '{}', rank {}: {}", plan_->api, group_.Name(), rank_, *error)};
      }
      elastic_ranks_ = std::move(std::get<std::vector<int>>(parsed));
      required_ = &elastic_ranks_;
    }
    timeout_ = plan_->default_timeout;
    if (plan_->timeout_us != nullptr) {
      const int32_t value = *plan_->timeout_us;
      timeout_ = value > 0 ? std::optional(std::chrono::microseconds(value)) : std::nullopt;
    }
    return std::nullopt;
  }

  // Parks this rank until the release, unless it came already.
  StepResult Park() {
    comm::ParkedRanks& parked = group_.Parked();
    if (timeout_ && !deadline_) deadline_ = DeadlineAfter(start_, *timeout_);
    if (!timeout_) warn_at_ = DeadlineAfter(start_, plan_->warn_after);
    Clock::time_point wake = deadline_ ? *deadline_ : warned_ ? Clock::time_point::max() : warn_at_;
    if (group_.Window().Released(seq_)) return StepResult::Done(Finish(comm::WaitResult::kReleased));
    parked.Park(rank_, seq_, this);
    // Parked: a release from now on takes this rank; one that came just before, we take.
    if (group_.Window().Released(seq_)) {
      if (!parked.Take(rank_, seq_)) return StepResult::ResumeComing();
      return StepResult::Done(Finish(comm::WaitResult::kReleased));
    }
    return StepResult::Suspended(wake);
  }

  // This arrival released barrier seq_: finish every parked barrier it covers (also those
  // abandoned before it, whose ranks were left behind by an elastic barrier).
  void ResumeParked() {
    std::vector<void*> taken;
    group_.Parked().TakeReleased(seq_, taken);
    for (void* waiter : taken) {
      auto* other = static_cast<BarrierRun*>(waiter);
      const runtime::Resumer resumer = *other->resumer_;
      resumer.Resume(other->Finish(comm::WaitResult::kReleased));  // may free `other`
    }
  }

  // One record per barrier of the group, by the arrival that released it (in whichever process),
  // after the release and before this rank's next arrival; that process's flight recorder keeps it.
  void RecordStatistics(std::span<const int64_t> arrivals) {
    if (arrivals.size() == required_->size()) {
      group_.RecordReleased(seq_, *required_, arrivals);
    } else {
      group_.RecordReleased(seq_, *required_);
    }
  }

  static constexpr size_t kSnapshotRanks = 64;

  runtime::TaskStatus WaitBlocking(const std::stop_token& stop) {
    comm::BarrierWindow& window = group_.Window();
    // The releaser itself, or a rank that arrived after the release: nothing to wait for, so no
    // stop callback to register (the common case of the last arrivals).
    if (window.Released(seq_)) return Finish(comm::WaitResult::kReleased);
    comm::WaitOptions options;
    if (timeout_) {
      options.deadline = DeadlineAfter(start_, *timeout_);
    } else {
      options.warn_at = DeadlineAfter(start_, plan_->warn_after);
      options.on_warn = [this] { Warn(); };
    }
    std::stop_callback wake_on_stop(stop, [&window] { window.WakeAll(); });
    return Finish(window.Wait(seq_, *required_, options, stop));
  }

  void Warn() {
    comm::BarrierWindow& window = group_.Window();
    if (!window.ClaimWarning(seq_)) return;  // one line per stuck barrier, not one per rank
    const Clock::time_point now = Clock::now();
    const std::vector<int> missing = window.Missing(seq_, *required_);
    Log(LogLevel::kWarning,
        "{}: group '{}' barrier #{} has waited {:.1f} s on rank {} for ranks [{}] (no timeout set; still "
        "waiting)",
        plan_->api, group_.Name(), seq_, Milliseconds(now - start_) / 1000.0, rank_,
        DescribeMissing(group_, seq_, missing));
    RecordUnfinished(comm::diagnosis::Unfinished::kHangWarning, now, missing, "hang warning");
  }

  // Keeps a barrier that did not complete in the flight recorder, and dumps it where asked.
  void RecordUnfinished(comm::diagnosis::Unfinished outcome, Clock::time_point end, const std::vector<int>& missing,
                        const char* reason) const {
    comm::diagnosis::FlightRecorder& flight = group_.Flight();
    flight.NoteUnfinished(rank_, seq_, outcome, start_.time_since_epoch().count(), end.time_since_epoch().count(),
                          missing);
    if (reason != nullptr && flight.ClaimFailureDump(seq_)) comm::diagnosis::DumpFlightRecordersOnFailure(reason);
  }

  runtime::TaskStatus Finish(comm::WaitResult result) const {
    comm::BarrierWindow& window = group_.Window();
    TraceWriter* trace = TraceWriter::Instance();
    const Clock::time_point end = trace != nullptr || result != comm::WaitResult::kReleased ? Clock::now() : start_;
    if (trace != nullptr) TraceBarrier(*trace, group_, rank_, seq_, start_, end, result);
    if (result == comm::WaitResult::kReleased) {
      group_.MarkPassed(rank_, seq_);
      return runtime::TaskStatus::Ok();
    }
    const std::vector<int> missing = window.Missing(seq_, *required_);
    switch (result) {
      case comm::WaitResult::kReleased:
        break;  // returned above
      case comm::WaitResult::kPeerDied:
        RecordUnfinished(comm::diagnosis::Unfinished::kPeerDied, end, missing, "peer died");
        return {ACL_ERROR_RT_SUSPECT_REMOTE_ERROR,
                fmt::format("{}: group '{}', rank {}, barrier #{}: {} after {:.3f} ms", plan_->api, group_.Name(), rank_,
                            seq_, DescribeDead(group_, window.DeadMissing(seq_, *required_)),
                            Milliseconds(end - start_))};
      case comm::WaitResult::kTimedOut:
        RecordUnfinished(comm::diagnosis::Unfinished::kTimedOut, end, missing, "timeout");
        return {ACL_ERROR_RT_VECTOR_CORE_TIMEOUT,
                fmt::format("{} timed out: group '{}', rank {}, barrier #{} waited {:.3f} ms (timeout {}); "
                            "ranks that had not arrived: [{}]",
                            plan_->api, group_.Name(), rank_, seq_, Milliseconds(end - start_),
                            DescribeTimeout(timeout_), DescribeMissing(group_, seq_, missing))};
      case comm::WaitResult::kStopped:
        break;
    }
    RecordUnfinished(comm::diagnosis::Unfinished::kAborted, end, missing, nullptr);  // shutting down: no dump
    return {ACL_ERROR_RT_STREAM_ABORT,
            fmt::format("{}: group '{}', rank {}, barrier #{} aborted after {:.3f} ms (stream destroyed or "
                        "aclFinalize); ranks that had not arrived: [{}]",
                        plan_->api, group_.Name(), rank_, seq_, Milliseconds(end - start_),
                        DescribeMissing(group_, seq_, missing))};
  }

  const std::shared_ptr<const BarrierPlan> plan_;
  comm::Group& group_;
  const int rank_;
  std::vector<int> elastic_ranks_;
  const std::vector<int>* required_ = nullptr;
  std::optional<std::chrono::microseconds> timeout_;
  uint64_t seq_ = 0;
  Clock::time_point start_;
  std::optional<Clock::time_point> deadline_;
  Clock::time_point warn_at_;
  bool warned_ = false;
  std::optional<runtime::Resumer> resumer_;
};

}  // namespace

runtime::Task MakeBarrierTask(std::shared_ptr<const BarrierPlan> plan) {
  runtime::Task task;
  // Threads: arrival and park never block. Processes: the start spins briefly, then hands the
  // blocking rest to the worker (StepResult::Blocks).
  task.may_run_inline = true;
  task.suspendable = std::make_unique<BarrierRun>(std::move(plan));
  return task;
}

}  // namespace distbarrier::op
