// What distbarrier-status makes of the documents processes send (live state) or leave behind
// (flight recorder dumps): one view per communicator, each rank's state, and for dumps where
// the job stopped. Both the status table and --analyze read the same document format
// (src/comm/diagnosis/flight_recorder.h); everything here is a pure function of the
// documents, so it is tested without a job.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace distbarrier::status {

// One process's document, or why there is none.
struct ProcessReply {
  pid_t pid = 0;
  std::string source;  // "pid 1234" or a dump's file name
  std::optional<nlohmann::json> document;
  std::string problem;  // set when document is empty: "stopped (SIGSTOP)", "no answer within 800 ms", ...
};

// What the caller knows about a process that sent nothing (from /proc): for ranks whose own
// process did not answer.
using ProcessCondition = std::map<pid_t, std::string>;

// The live view: {"communicators":[{"name","size","threads","released_seq","ranks":[{"rank",
// "pid","host","device","last_seq","state","barrier","waiting_ms","missing","blocks",
// "source"}]}],"processes":[{"pid","answered","problem"}]} -- also what --json prints.
nlohmann::json MergeLive(const std::vector<ProcessReply>& replies);

// The status table of a merged live view.
std::string FormatTable(const nlohmann::json& merged);

// Where a job whose dumps these are stopped: per communicator, the highest barrier every rank
// passed, the first one not completed, the ranks it waited for, and each rank's evidence.
nlohmann::json Analyze(const std::vector<ProcessReply>& dumps);
std::string FormatAnalysis(const nlohmann::json& analysis);

}  // namespace distbarrier::status
