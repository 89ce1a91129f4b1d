// The pieces of live diagnosis that need no job: the server's credentials check, the
// signal-safe JSON writer, the flight recorder's document (written while barriers are recorded)
// and what distbarrier-status makes of such documents. The jobs themselves: check_status.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "comm/diagnosis/flight_recorder.h"
#include "comm/diagnosis/status_server.h"
#include "comm/group.h"
#include "common/json_sink.h"
#include "job_view.h"

namespace distbarrier::testing {
namespace {

using nlohmann::json;

TEST(StatusServerTest, OnlyTheSameUserMayReadAJob) {
  EXPECT_TRUE(comm::diagnosis::ClientAllowed(1000, 1000));
  EXPECT_FALSE(comm::diagnosis::ClientAllowed(1001, 1000));
  EXPECT_FALSE(comm::diagnosis::ClientAllowed(0, 1000));  // root is another user too
  EXPECT_FALSE(comm::diagnosis::ClientAllowed(1000, 0));
}

TEST(JsonSinkTest, EscapesStringsAndFlushesPastItsBuffer) {
  std::string odd = "quote \" backslash \\ newline \n tab \t bell \x07 ";
  odd += std::string(10000, 'x');
  std::string text;
  {
    JsonSink out(&text);
    out.Raw("{").Key("s").String(odd).Raw(",").Key("min").Int(INT64_MIN).Raw(",").Key("max").UInt(UINT64_MAX);
    out.Raw(",").Key("zero").Int(0).Raw(",").Key("yes").Bool(true).Raw("}");
  }
  const json parsed = json::parse(text);
  EXPECT_EQ(parsed["s"], odd);
  EXPECT_EQ(parsed["min"].get<int64_t>(), INT64_MIN);
  EXPECT_EQ(parsed["max"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(parsed["zero"], 0);
  EXPECT_EQ(parsed["yes"], true);
}

// Barrier `seq` of every rank of `group`, recorded as the barrier path records it.
void PassBarrier(comm::Group& group, uint64_t seq) {
  comm::BarrierWindow& window = group.Window();
  for (int rank = 0; rank < group.Size(); ++rank) {
    window.Arrive(rank, seq, static_cast<int64_t>(seq * 1000 + rank), group.AllRanks());
  }
  group.Flight().RecordReleased(seq, group.Stats().RecordReleased(seq, group.AllRanks(), window));
}

TEST(FlightRecorderTest, DumpHoldsTheLastBarriersAndTheUnfinishedOne) {
  // One fixed name (TEST_TMPDIR is the build tree under ctest): the exit dump that the variable
  // also asks for rewrites this file when the test ends, so a name per pid would pile up.
  const std::string path = ::testing::TempDir() + "status_view_test_flight.json";
  setenv("DISTBARRIER_FLIGHT_RECORDER", path.c_str(), 1);
  setenv("DISTBARRIER_FLIGHT_RECORDER_SIZE", "8", 1);
  setenv("DISTBARRIER_STATUS", "0", 1);
  comm::Group group("flight_test", {0, 1, 2});
  for (uint64_t seq = 1; seq <= 20; ++seq) PassBarrier(group, seq);
  // Rank 2 never reaches barrier 21; rank 0 times out in it.
  group.Window().Arrive(0, 21, 21000, group.AllRanks());
  group.Window().Arrive(1, 21, 21001, group.AllRanks());
  const std::vector<int> missing = {2};
  group.Flight().NoteUnfinished(0, 21, comm::diagnosis::Unfinished::kTimedOut, 21000, 21000 + 300'000'000, missing);
  ASSERT_EQ(comm::diagnosis::DumpFlightRecorders("timeout"), path);

  std::ifstream file(path);
  const json document = json::parse(file);
  EXPECT_EQ(document["format"], "distbarrier-flight-recorder");
  EXPECT_EQ(document["reason"], "timeout");
  ASSERT_EQ(document["groups"].size(), 1u);
  const json& recorded = document["groups"][0];
  EXPECT_EQ(recorded["name"], "flight_test");
  EXPECT_EQ(recorded["released_seq"], 20);
  ASSERT_EQ(recorded["barriers"].size(), 8u);  // the ring keeps the last 8
  EXPECT_EQ(recorded["barriers"][0]["seq"], 13);
  EXPECT_EQ(recorded["barriers"][7]["seq"], 20);
  EXPECT_EQ(recorded["barriers"][7]["last_rank"], 2);
  EXPECT_EQ(recorded["barriers"][7]["release_ns"], 20002);
  EXPECT_EQ(recorded["ranks"][0]["unfinished"]["outcome"], "timed out");
  EXPECT_EQ(recorded["ranks"][0]["unfinished"]["missing"], json({2}));

  distbarrier::status::ProcessReply dump;
  dump.source = path;
  dump.document = document;
  const json analysis = distbarrier::status::Analyze({dump});
  const json& communicator = analysis["communicators"][0];
  EXPECT_EQ(communicator["passed_all"], 20);
  EXPECT_EQ(communicator["first_incomplete"], 21);
  EXPECT_EQ(communicator["waited_for"], json({2}));
  EXPECT_EQ(communicator["arrived"], json({0, 1}));
  const std::string text = distbarrier::status::FormatAnalysis(analysis);
  EXPECT_NE(text.find("barrier #21 did not complete: it waited for rank 2 (ranks 0, 1 arrived)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("timed out after 300.0 ms waiting for rank 2"), std::string::npos) << text;
}

// Readers (the status server, dumps) and the recording barrier path run at once; under TSan
// this is the check that the ring's seqlock is a protocol, not luck.
TEST(FlightRecorderTest, DocumentsStayValidWhileBarriersAreRecorded) {
  setenv("DISTBARRIER_FLIGHT_RECORDER_SIZE", "16", 1);
  setenv("DISTBARRIER_STATUS", "0", 1);
  comm::Group group("concurrent_test", {0, 1});
  std::atomic<bool> done{false};
  std::thread recorder([&] {
    for (uint64_t seq = 1; seq <= 20000; ++seq) PassBarrier(group, seq);
    done.store(true);
  });
  int documents = 0;
  uint64_t last_seen = 0;
  while (!done.load() || documents == 0) {
    const json document = json::parse(comm::diagnosis::StateDocument());
    for (const json& recorded : document["groups"]) {
      if (recorded["name"] != "concurrent_test") continue;
      const uint64_t arrived = recorded["ranks"][0]["arrived_seq"];
      EXPECT_GE(arrived, last_seen);  // sequences only grow
      last_seen = arrived;
      ++documents;
    }
  }
  recorder.join();
  EXPECT_GT(documents, 0);
}

TEST(StatusViewTest, LiveViewNamesTheRankABarrierWaitsFor) {
  // Two processes answered (ranks 0 and 1); rank 2's process is stopped.
  auto document = [](int pid, int local_rank) {
    json ranks = json::array();
    const uint64_t arrived[] = {8, 8, 7};
    for (int rank = 0; rank < 3; ++rank) {
      ranks.push_back({{"rank", rank},
                       {"pid", 100 + rank},
                       {"local", rank == local_rank},
                       {"device", rank == local_rank ? 0 : -1},
                       {"arrived_seq", arrived[rank]},
                       {"arrival_ns", 1'000'000},
                       {"passed_seq", 7},
                       {"dead", false},
                       {"destroyed", false}});
    }
    json group = {{"name", "job"},    {"size", 3},         {"threads", false},
                  {"retired", false}, {"released_seq", 7}, {"ranks", ranks}};
    return json{{"pid", pid}, {"host", "h"}, {"steady_ns", 251'000'000}, {"groups", json::array({group})}};
  };
  std::vector<distbarrier::status::ProcessReply> replies(3);
  replies[0].pid = 100;
  replies[0].document = document(100, 0);
  replies[1].pid = 101;
  replies[1].document = document(101, 1);
  replies[2].pid = 102;
  replies[2].problem = "stopped (SIGSTOP)";
  const json merged = distbarrier::status::MergeLive(replies);
  const json& ranks = merged["communicators"][0]["ranks"];
  EXPECT_EQ(ranks[0]["state"], "waiting");
  EXPECT_EQ(ranks[0]["barrier"], 8);
  EXPECT_EQ(ranks[0]["missing"], json({2}));
  EXPECT_DOUBLE_EQ(ranks[0]["waiting_ms"].get<double>(), 250.0);
  EXPECT_EQ(ranks[2]["state"], "stopped");
  EXPECT_EQ(ranks[2]["blocks"], 8);
  const std::string table = distbarrier::status::FormatTable(merged);
  EXPECT_NE(table.find("waiting in barrier #8 for 250 ms; missing rank 2"), std::string::npos) << table;
  EXPECT_NE(table.find("stopped (SIGSTOP); barrier #8 waits for it"), std::string::npos) << table;
}

}  // namespace
}  // namespace distbarrier::testing
