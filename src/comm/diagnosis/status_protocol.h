// The status socket between a process of a job and distbarrier-status (tools/distbarrier_status),
// shared by both sides.
//
// Each process holding a communicator listens on the abstract Unix socket
// "\0distbarrier-status.<uid>.<pid>". A client connects, sends one request line and reads the
// reply until the server closes:
//   "state\n" -> the process's state document (the flight recorder's JSON without its
//                barrier ring; see comm/diagnosis/flight_recorder.h)
//   "dump\n"  -> the process writes its flight recorder file; reply {"dumped":"<path>"}
// Both sides check the other's credentials (SO_PEERCRED): only the same uid is served, and a
// client only believes a server of its own uid. A refused client reads {"error":"..."}.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace distbarrier::comm::diagnosis {

inline constexpr std::string_view kStatusSocketPrefix = "distbarrier-status.";
inline constexpr std::string_view kStateRequest = "state";
inline constexpr std::string_view kDumpRequest = "dump";
inline constexpr std::string_view kFlightRecorderFormat = "distbarrier-flight-recorder";

// The socket name, without the leading NUL of the abstract namespace.
inline std::string StatusSocketName(uid_t uid, pid_t pid) {
  return std::string(kStatusSocketPrefix) + std::to_string(uid) + "." + std::to_string(pid);
}

}  // namespace distbarrier::comm::diagnosis
