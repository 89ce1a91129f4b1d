#include "op/distribute_barrier/barrier_task.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stop_token>

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
// a track group per communicator (pid); names the tracks on first use.
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
  const char* outcome = result == comm::WaitResult::kReleased   ? "released"
                        : result == comm::WaitResult::kTimedOut ? "timed out"
                        : result == comm::WaitResult::kPeerDied ? "peer died"
                                                                 : "aborted";
  trace.Emit(fmt::format(
      R"J({{"ph":"X","name":"barrier #{}","cat":"distbarrier","pid":{},"tid":{},"ts":{:.3f},"dur":{:.3f},)J"
      R"J("args":{{"group":"{}","seq":{},"rank":{},"device":{},"outcome":"{}"}}}})J",
      seq, pid, rank, Microseconds(arrive), Microseconds(release) - Microseconds(arrive), name, seq, rank,
      group.DeviceOfRank(rank), outcome));
}

// "rank 3 (pid 1234) died" / "ranks 3 (pid 1234), 5 (pid 1240) died"
std::string DescribeDead(const comm::BarrierWindow& window, const std::vector<int>& dead) {
  std::vector<std::string> parts;
  for (int rank : dead) parts.push_back(fmt::format("{} (pid {})", rank, window.Pid(rank)));
  return fmt::format("{} {} died", dead.size() == 1 ? "rank" : "ranks", fmt::join(parts, ", "));
}

std::string DescribeTimeout(std::optional<std::chrono::microseconds> timeout) {
  if (!timeout) return "none";
  return fmt::format("{:.3f} ms", std::chrono::duration<double, std::milli>(*timeout).count());
}

}  // namespace

void ApplyEnvironmentDefaults(BarrierPlan& plan) {
  int64_t timeout_ms = EnvInt("DISTBARRIER_TIMEOUT_MS", 0);
  if (timeout_ms > 0) plan.default_timeout = std::chrono::milliseconds(timeout_ms);
  int64_t warn_s = EnvInt("DISTBARRIER_WARN_S", 30);
  plan.warn_after = std::chrono::seconds(warn_s > 0 ? warn_s : 30);
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
  return required;
}

runtime::Task MakeBarrierTask(std::shared_ptr<const BarrierPlan> plan) {
  runtime::Task task;
  task.run = [plan](const std::stop_token& stop) -> runtime::TaskStatus {
    comm::Group& group = *plan->member.group;
    const int rank = plan->member.rank;

    std::vector<int> elastic_ranks;
    if (plan->elastic_info != nullptr) {
      auto parsed = ElasticRequiredRanks(plan->elastic_info, group.Size(), rank);
      if (auto* error = std::get_if<std::string>(&parsed)) {
        return {ACL_ERROR_RT_PARAM_INVALID,
                fmt::format("{}: group '{}', rank {}: {}", plan->api, group.Name(), rank, *error)};
      }
      elastic_ranks = std::move(std::get<std::vector<int>>(parsed));
    }
    const std::vector<int>& required = plan->elastic_info != nullptr ? elastic_ranks : group.AllRanks();

    std::optional<std::chrono::microseconds> timeout = plan->default_timeout;
    if (plan->timeout_us != nullptr) {
      const int32_t value = *plan->timeout_us;
      timeout = value > 0 ? std::optional(std::chrono::microseconds(value)) : std::nullopt;
    }

    comm::BarrierWindow& window = group.Window();
    const uint64_t seq = group.NextSequence(rank);
    const Clock::time_point start = Clock::now();
    const int64_t arrival_ns = start.time_since_epoch().count();
    window.Arrive(rank, seq, arrival_ns, required);

    comm::WaitOptions options;
    if (timeout) {
      options.deadline = start + *timeout;
    } else {
      options.warn_at = start + plan->warn_after;
      options.on_warn = [&] {
        if (!window.ClaimWarning(seq)) return;  // one line per stuck barrier, not one per rank
        Log(LogLevel::kWarning,
            "{}: group '{}' barrier #{} has waited {:.1f} s on rank {} for ranks [{}] (no timeout set; still "
            "waiting)",
            plan->api, group.Name(), seq, Milliseconds(Clock::now() - start) / 1000.0, rank,
            fmt::join(window.Missing(seq, required), ", "));
      };
    }
    std::stop_callback wake_on_stop(stop, [&window] { window.WakeAll(); });
    const comm::WaitResult result = window.Wait(seq, required, options, stop);
    const Clock::time_point end = Clock::now();
    if (TraceWriter* trace = TraceWriter::Instance()) TraceBarrier(*trace, group, rank, seq, start, end, result);
    switch (result) {
      case comm::WaitResult::kReleased:
        if (comm::StatsEnabled() && group.Stats().ClaimRecord(seq)) group.Stats().Record(seq, required, window);
        group.MarkPassed(rank, seq);
        return runtime::TaskStatus::Ok();
      case comm::WaitResult::kPeerDied:
        return {ACL_ERROR_RT_SUSPECT_REMOTE_ERROR,
                fmt::format("{}: group '{}', rank {}, barrier #{}: {} after {:.3f} ms", plan->api, group.Name(),
                            rank, seq, DescribeDead(window, window.DeadMissing(seq, required)),
                            Milliseconds(end - start))};
      case comm::WaitResult::kTimedOut:
        return {ACL_ERROR_RT_VECTOR_CORE_TIMEOUT,
                fmt::format("{} timed out: group '{}', rank {}, barrier #{} waited {:.3f} ms (timeout {}); "
                            "ranks that had not arrived: [{}]",
                            plan->api, group.Name(), rank, seq, Milliseconds(end - start), DescribeTimeout(timeout),
                            fmt::join(window.Missing(seq, required), ", "))};
      case comm::WaitResult::kStopped:
        break;
    }
    return {ACL_ERROR_RT_STREAM_ABORT,
            fmt::format("{}: group '{}', rank {}, barrier #{} aborted after {:.3f} ms (stream destroyed or "
                        "aclFinalize); ranks that had not arrived: [{}]",
                        plan->api, group.Name(), rank, seq, Milliseconds(end - start),
                        fmt::join(window.Missing(seq, required), ", "))};
  };
  return task;
}

}  // namespace distbarrier::op
