#include "job_view.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace distbarrier::status {
namespace {

using nlohmann::json;

// One rank as the documents show it: the view of its own process where it answered (it
// knows the device and whether the rank waits parked), else the freshest peer's view of the
// shared barrier window.
struct RankFacts {
  json view;
  bool from_owner = false;
  int64_t now_ns = 0;  // the document's steady clock
  std::string host;
  std::string source;
  std::vector<json> unfinished;  // every document's note of this rank's unfinished barrier
  uint64_t arrived = 0;          // the highest sequence any view shows it reached (they only grow)
  int64_t arrival_ns = 0;        // when it reached that one
};

struct GroupFacts {
  int size = 0;
  bool threads = false;
  uint64_t released = 0;
  std::map<int, RankFacts> ranks;
  std::map<uint64_t, json> barriers;  // the rings of every dump, by sequence
  std::vector<std::string> sources;
};

uint64_t Arrived(const RankFacts& facts) {
  return facts.arrived;
}

std::map<std::string, GroupFacts> Collect(const std::vector<ProcessReply>& replies, bool include_retired) {
  std::map<std::string, GroupFacts> groups;
  for (const ProcessReply& reply : replies) {
    if (!reply.document) continue;
    const json& document = *reply.document;
    const int64_t now_ns = document.value("steady_ns", int64_t{0});
    const std::string host = document.value("host", std::string());
    for (const json& group : document.value("groups", json::array())) {
      if (!include_retired && group.value("retired", false)) continue;
      GroupFacts& facts = groups[group.value("name", std::string("?"))];
      facts.size = group.value("size", 0);
      facts.threads = group.value("threads", false);
      facts.released = std::max(facts.released, group.value("released_seq", uint64_t{0}));
      facts.sources.push_back(reply.source);
      for (const json& barrier : group.value("barriers", json::array()))
        facts.barriers[barrier.value("seq", uint64_t{0})] = barrier;
      for (const json& rank : group.value("ranks", json::array())) {
        const bool local = rank.value("local", false);
        RankFacts& known = facts.ranks[rank.value("rank", -1)];
        if (rank.contains("unfinished")) known.unfinished.push_back(rank["unfinished"]);
        // The owner's view first; among peers' views the freshest (sequences only grow). Dead
        // and destroyed marks stick whichever view shows them.
        const bool dead = rank.value("dead", false) || (known.view.is_object() && known.view.value("dead", false));
        const bool destroyed =
            rank.value("destroyed", false) || (known.view.is_object() && known.view.value("destroyed", false));
        const uint64_t arrived = rank.value("arrived_seq", uint64_t{0});
        const bool take = known.view.is_null() || (local && !known.from_owner) ||
                          (!known.from_owner && !local && arrived > Arrived(known));
        if (known.view.is_null() || arrived > known.arrived) {
          known.arrived = arrived;
          known.arrival_ns = rank.value("arrival_ns", int64_t{0});
        }
        if (take) {
          known.view = rank;
          known.from_owner = local;
          known.now_ns = now_ns;
          // A rank of another host (a group across hosts) is on that host, not the reporter's.
          known.host = rank.contains("other_host") ? fmt::format("host {}", rank["other_host"].get<int>()) : host;
          known.source = reply.source;
        }
        known.view["dead"] = dead;
        known.view["destroyed"] = destroyed;
      }
    }
  }
  return groups;
}

std::vector<int> MissingAt(const GroupFacts& facts, uint64_t seq) {
  std::vector<int> missing;
  for (const auto& [rank, other] : facts.ranks) {
    if (Arrived(other) < seq) missing.push_back(rank);
  }
  return missing;
}

std::string DescribeRanks(const std::vector<int>& ranks) {
  return fmt::format("{} {}", ranks.size() == 1 ? "rank" : "ranks", fmt::join(ranks, ", "));
}

}  // namespace

json MergeLive(const std::vector<ProcessReply>& replies) {
  std::map<pid_t, std::string> problems;
  json processes = json::array();
  for (const ProcessReply& reply : replies) {
    json process = {{"pid", reply.pid}, {"answered", reply.document.has_value()}};
    if (!reply.document) {
      process["problem"] = reply.problem;
      problems[reply.pid] = reply.problem;
    }
    processes.push_back(process);
  }
  json communicators = json::array();
  for (auto& [name, facts] : Collect(replies, /*include_retired=*/false)) {
    json ranks = json::array();
    std::map<int, uint64_t> blocks;  // rank -> the lowest barrier that waits for it
    for (auto& [rank, known] : facts.ranks) {
      const json& view = known.view;
      const uint64_t arrived = Arrived(known);
      const auto pid = view.value("pid", pid_t{0});
      json row = {{"rank", rank},        {"pid", pid},
                  {"host", known.host},  {"device", view.value("device", -1)},
                  {"last_seq", arrived}, {"source", known.source}};
      const auto problem = problems.find(pid);
      if (view.value("destroyed", false)) {
        row["state"] = "destroyed";
      } else if (view.value("dead", false)) {
        row["state"] = "dead";
      } else if (arrived > facts.released) {
        row["state"] = facts.threads ? "parked" : "waiting";
        row["barrier"] = arrived;
        // Unknown (0) for a rank of another host that its host only reported: times of
        // another host's clock are not compared with this one's.
        if (known.arrival_ns != 0) row["waiting_ms"] = static_cast<double>(known.now_ns - known.arrival_ns) / 1e6;
        const std::vector<int> missing = MissingAt(facts, arrived);
        row["missing"] = missing;
        for (int other : missing) {
          if (!blocks.count(other) || blocks[other] > arrived) blocks[other] = arrived;
        }
      } else if (problem != problems.end()) {
        row["state"] = problem->second.rfind("stopped", 0) == 0  ? "stopped"
                       : problem->second.rfind("exited", 0) == 0 ? "dead"
                                                                 : "not answering";
      } else {
        row["state"] = "running";
      }
      if (problem != problems.end()) row["problem"] = problem->second;
      ranks.push_back(row);
    }
    for (json& row : ranks) {
      const auto blocked = blocks.find(row["rank"].get<int>());
      if (blocked != blocks.end() && row["state"] != "waiting" && row["state"] != "parked")
        row["blocks"] = blocked->second;
    }
    communicators.push_back({{"name", name},
                             {"size", facts.size},
                             {"threads", facts.threads},
                             {"released_seq", facts.released},
                             {"ranks", ranks}});
  }
  return {{"communicators", communicators}, {"processes", processes}};
}

std::string FormatTable(const json& merged) {
  std::ostringstream out;
  for (const json& communicator : merged["communicators"]) {
    out << fmt::format("communicator {}: {} ranks ({}), barriers released: {}\n",
                       communicator["name"].get<std::string>(), communicator["size"].get<int>(),
                       communicator["threads"].get<bool>() ? "threads" : "processes",
                       communicator["released_seq"].get<uint64_t>());
    out << fmt::format("  {:>4}  {:>7}  {:<12}  {:>6}  {:>8}  {}\n", "rank", "pid", "host", "device", "last seq",
                       "state");
    for (const json& row : communicator["ranks"]) {
      const std::string state = row["state"];
      std::string text = state;
      if (row.contains("barrier")) {
        const std::string since =
            row.contains("waiting_ms") ? fmt::format(" for {:.0f} ms", row["waiting_ms"].get<double>()) : "";
        text = fmt::format("{} in barrier #{}{}; missing {}", state, row["barrier"].get<uint64_t>(), since,
                           DescribeRanks(row["missing"].get<std::vector<int>>()));
      }
      if (row.contains("problem") && state != "stopped" && state != "not answering") {
        text += fmt::format(" (its process: {})", row["problem"].get<std::string>());
      } else if (state == "stopped" || state == "not answering") {
        text = row["problem"].get<std::string>();
      }
      if (row.contains("blocks")) text += fmt::format("; barrier #{} waits for it", row["blocks"].get<uint64_t>());
      const int device = row["device"].get<int>();
      out << fmt::format("  {:>4}  {:>7}  {:<12}  {:>6}  {:>8}  {}\n", row["rank"].get<int>(), row["pid"].get<int>(),
                         row["host"].get<std::string>(), device >= 0 ? std::to_string(device) : "?",
                         row["last_seq"].get<uint64_t>(), text);
    }
  }
  for (const json& process : merged["processes"]) {
    if (!process["answered"].get<bool>()) {
      out << fmt::format("process {}: {}\n", process["pid"].get<int>(), process["problem"].get<std::string>());
    }
  }
  return out.str();
}

json Analyze(const std::vector<ProcessReply>& dumps) {
  json communicators = json::array();
  for (auto& [name, facts] : Collect(dumps, /*include_retired=*/true)) {
    // The ring may know a later release than a window read before it.
    if (!facts.barriers.empty()) facts.released = std::max(facts.released, facts.barriers.rbegin()->first);
    const uint64_t passed = facts.released;
    const uint64_t next = passed + 1;
    std::vector<int> arrived;
    std::vector<int> waited_for;
    for (const auto& [rank, known] : facts.ranks) (Arrived(known) >= next ? arrived : waited_for).push_back(rank);
    json result = {{"name", name}, {"size", facts.size}, {"files", facts.sources}, {"passed_all", passed}};
    // Times are shown from the last release (or, with none, the first arrival at `next`).
    int64_t origin = 0;
    const auto last = facts.barriers.find(passed);
    if (last != facts.barriers.end()) {
      origin = last->second.value("release_ns", int64_t{0});
      result["last_release"] = last->second;
    } else {
      for (int rank : arrived) {
        const int64_t at = facts.ranks[rank].arrival_ns;
        if (at != 0 && (origin == 0 || at < origin)) origin = at;  // 0: another host's, time unknown
      }
    }
    if (arrived.empty()) {
      result["first_incomplete"] = nullptr;
    } else {
      result["first_incomplete"] = next;
      result["arrived"] = arrived;
      result["waited_for"] = waited_for;
    }
    json ranks = json::array();
    for (const auto& [rank, known] : facts.ranks) {
      const json& view = known.view;
      json row = {{"rank", rank},
                  {"pid", view.value("pid", 0)},
                  {"device", view.value("device", -1)},
                  {"last_seq", Arrived(known)},
                  {"dead", view.value("dead", false)},
                  {"destroyed", view.value("destroyed", false)},
                  {"dump", known.from_owner ? json(known.source) : json(nullptr)}};
      if (Arrived(known) > 0 && origin != 0 && known.arrival_ns != 0) {
        row["arrival_ms"] = static_cast<double>(known.arrival_ns - origin) / 1e6;
      }
      const json* latest = nullptr;  // the note of its latest unfinished barrier
      for (const json& note : known.unfinished) {
        if (latest == nullptr || note.value("seq", uint64_t{0}) >= latest->value("seq", uint64_t{0})) latest = &note;
      }
      if (latest != nullptr) {
        json note = *latest;
        note["waited_ms"] =
            static_cast<double>(note.value("end_ns", int64_t{0}) - note.value("arrival_ns", int64_t{0})) / 1e6;
        row["unfinished"] = note;
      }
      ranks.push_back(row);
    }
    result["ranks"] = ranks;
    communicators.push_back(result);
  }
  return {{"communicators", communicators}};
}

std::string FormatAnalysis(const json& analysis) {
  std::ostringstream out;
  if (analysis["communicators"].empty()) out << "no communicators in these files\n";
  for (const json& communicator : analysis["communicators"]) {
    out << fmt::format("communicator {} ({} ranks; from {})\n", communicator["name"].get<std::string>(),
                       communicator["size"].get<int>(),
                       fmt::join(communicator["files"].get<std::vector<std::string>>(), ", "));
    const uint64_t passed = communicator["passed_all"];
    if (passed == 0) {
      out << "  no barrier completed\n";
    } else if (communicator.contains("last_release")) {
      out << fmt::format("  every rank passed barrier #{} (the last to arrive there: rank {})\n", passed,
                         communicator["last_release"]["last_rank"].get<int>());
    } else {
      out << fmt::format("  every rank passed barrier #{}\n", passed);
    }
    if (communicator["first_incomplete"].is_null()) {
      out << fmt::format("  no barrier was pending: the job stopped outside its barriers, after #{}\n", passed);
    } else {
      const auto waited = communicator["waited_for"].get<std::vector<int>>();
      out << fmt::format("  barrier #{} did not complete: it waited for {} ({} arrived)\n",
                         communicator["first_incomplete"].get<uint64_t>(), DescribeRanks(waited),
                         DescribeRanks(communicator["arrived"].get<std::vector<int>>()));
    }
    out << "  evidence (times from the last release):\n";
    for (const json& row : communicator["ranks"]) {
      std::string line = fmt::format("    rank {} (pid {}", row["rank"].get<int>(), row["pid"].get<int>());
      if (row["device"].get<int>() >= 0) line += fmt::format(", device {}", row["device"].get<int>());
      line += fmt::format("): reached #{}", row["last_seq"].get<uint64_t>());
      if (row.contains("arrival_ms")) line += fmt::format(" at {:+.3f} ms", row["arrival_ms"].get<double>());
      if (row["destroyed"].get<bool>()) line += "; communicator destroyed";
      if (row.contains("unfinished")) {
        const json& note = row["unfinished"];
        line += fmt::format("; barrier #{}: {} after {:.1f} ms waiting for {}", note["seq"].get<uint64_t>(),
                            note["outcome"].get<std::string>(), note["waited_ms"].get<double>(),
                            DescribeRanks(note["missing"].get<std::vector<int>>()));
        // It was alive to note that: a death the dumps show came after (the job ending).
        if (row["dead"].get<bool>()) line += "; its process exited after that";
      } else if (row["dead"].get<bool>()) {
        line += "; dead (its process exited)";
      }
      line += row["dump"].is_null() ? "  [no dump from its process]"
                                    : fmt::format("  [{}]", row["dump"].get<std::string>());
      out << line << "\n";
    }
  }
  return out.str();
}

}  // namespace distbarrier::status
