// HcclCommInitClusterInfo: groups started from a rank table on this host (all servers' host_ip
// 127.0.0.1), one rank per process and several ranks (threads) per process as CANN's examples
// run them, each running 100 barriers whose property is checked; bad tables, bad ranks, a
// wrong device and a wrong secret refused with messages that name the cause, the group unharmed.
// Ranks are forked before anything touches the runtime; they share an anonymous MAP_SHARED
// area with the parent for their tickets and failures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "barrier_checker.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kMaxRanks = 8;
constexpr int kBarriers = 100;
const char* const kSecret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// `servers` servers of `devices` devices each on `hosts` (server s on hosts[s % size]),
// rank = server * devices + device.
Json Table(int servers, int devices, const std::vector<std::string>& hosts = {"127.0.0.1"}) {
  Json list = Json::array();
  for (int s = 0; s < servers; ++s) {
    Json device_list = Json::array();
    for (int d = 0; d < devices; ++d) {
      device_list.push_back({{"device_id", std::to_string(d)},
                             {"super_device_id", std::to_string(s * devices + d)},
                             {"device_ip", "192.168.1." + std::to_string(s * devices + d + 1)},
                             {"rank_id", std::to_string(s * devices + d)}});
    }
    list.push_back({{"server_id", "node_" + std::to_string(s)},
                    {"host_ip", hosts[static_cast<size_t>(s) % hosts.size()]},
                    {"device", device_list}});
  }
  return {
      {"status", "completed"}, {"version", "1.2"}, {"server_count", std::to_string(servers)}, {"server_list", list}};
}

struct SharedArea {
  std::atomic<uint64_t> clock;
  uint64_t arrive[kMaxRanks][kBarriers];
  uint64_t leave[kMaxRanks][kBarriers];
  char message[kMaxRanks][512];
  std::atomic<int> finished;
};

class ClusterInfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cluster_info_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
    // A port of this test's own (the group listens there), and a bounded wait.
    setenv("HCCL_IF_BASE_PORT", std::to_string(20000 + getpid() % 40000).c_str(), 1);
    setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "60", 1);
    setenv("HCCL_EXEC_TIMEOUT", "60", 1);
    unsetenv("DISTBARRIER_JOB_SECRET");
    unsetenv("DISTBARRIER_JOB_SECRET_FILE");
    void* memory = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(memory, MAP_FAILED);
    area_ = new (memory) SharedArea{};
  }
  void TearDown() override {
    for (const char* name : {"table.json", "bad.json", "secret"}) unlink((directory_ + "/" + name).c_str());
    rmdir(directory_.c_str());
    munmap(area_, sizeof(SharedArea));
    aclFinalize();
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = directory_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // One rank: joins from the table on its device, runs the barriers taking tickets around
  // each, and leaves together with the others.
  void RunRank(const std::string& table, int ranks, int rank, int device) {
    auto fail = [&](const std::string& what) {
      std::snprintf(area_->message[rank], sizeof(area_->message[rank]), "rank %d: %s", rank, what.c_str());
    };
    if (aclrtSetDevice(device) != 0) return fail(std::string("aclrtSetDevice: ") + aclGetRecentErrMsg());
    HcclComm comm = nullptr;
    if (HcclCommInitClusterInfo(table.c_str(), static_cast<uint32_t>(rank), &comm) != HCCL_SUCCESS) {
      return fail(std::string("HcclCommInitClusterInfo: ") + aclGetRecentErrMsg());
    }
    uint32_t size = 0, id = 0;
    if (HcclGetRankSize(comm, &size) != HCCL_SUCCESS || HcclGetRankId(comm, &id) != HCCL_SUCCESS ||
        size != static_cast<uint32_t>(ranks) || id != static_cast<uint32_t>(rank)) {
      return fail("rank size or id differ from the table");
    }
    aclrtStream stream = nullptr;
    if (aclrtCreateStream(&stream) != 0) return fail("aclrtCreateStream");
    for (int k = 0; k < kBarriers; ++k) {
      area_->arrive[rank][k] = area_->clock.fetch_add(1) + 1;
      if (HcclBarrier(comm, stream) != HCCL_SUCCESS || aclrtSynchronizeStream(stream) != 0) {
        return fail(std::string("barrier: ") + aclGetRecentErrMsg());
      }
      area_->leave[rank][k] = area_->clock.fetch_add(1) + 1;
    }
    aclrtDestroyStream(stream);
    area_->finished.fetch_add(1, std::memory_order_acq_rel);
    // Leave together: a process that exits is a dead peer to a group still running.
    while (area_->finished.load(std::memory_order_acquire) < ranks) std::this_thread::yield();
    HcclCommDestroy(comm);
  }

  // `processes` processes with `threads` ranks each, rank = process * threads + thread on
  // device `device_of(rank)`; returns the failures, or the barrier property's violation.
  std::vector<std::string> Run(const std::string& table, int processes, int threads, int devices_per_server) {
    const int ranks = processes * threads;
    std::vector<pid_t> children;
    for (int process = 0; process < processes; ++process) {
      const pid_t pid = fork();
      if (pid == 0) {
        std::vector<std::thread> workers;
        for (int thread = 0; thread < threads; ++thread) {
          const int rank = process * threads + thread;
          workers.emplace_back([&, rank] { RunRank(table, ranks, rank, rank % devices_per_server); });
        }
        for (auto& worker : workers) worker.join();
        aclFinalize();
        _exit(0);
      }
      children.push_back(pid);
    }
    std::vector<std::string> failures;
    for (pid_t pid : children) {
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failures.push_back("a rank process exited abnormally");
    }
    for (int rank = 0; rank < ranks; ++rank) {
      if (area_->message[rank][0] != '\0') failures.push_back(area_->message[rank]);
    }
    if (!failures.empty()) return failures;
    std::vector<std::vector<uint64_t>> arrive(ranks), leave(ranks);
    for (int rank = 0; rank < ranks; ++rank) {
      arrive[rank].assign(area_->arrive[rank], area_->arrive[rank] + kBarriers);
      leave[rank].assign(area_->leave[rank], area_->leave[rank] + kBarriers);
    }
    if (std::string violation = FirstViolation(arrive, leave); !violation.empty()) failures.push_back(violation);
    return failures;
  }

  // In a child process (the runtime stays untouched here): what HcclCommInitClusterInfo says.
  struct Outcome {
    int code;
    std::string message;
  };
  Outcome InitInChild(const std::string& table, int rank, int device, const std::vector<std::string>& env = {}) {
    const pid_t pid = fork();
    if (pid == 0) {
      for (const std::string& assignment : env) putenv(const_cast<char*>(assignment.c_str()));
      HcclComm comm = nullptr;
      int code = aclrtSetDevice(device);
      if (code == 0) code = HcclCommInitClusterInfo(table.c_str(), static_cast<uint32_t>(rank), &comm);
      std::snprintf(area_->message[kMaxRanks - 1], sizeof(area_->message[0]), "%s", aclGetRecentErrMsg());
      if (code == 0) HcclCommDestroy(comm);
      aclFinalize();
      _exit(code == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    Outcome outcome{WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1, area_->message[kMaxRanks - 1]};
    area_->message[kMaxRanks - 1][0] = '\0';
    return outcome;
  }

  std::string directory_;
  SharedArea* area_ = nullptr;
};

TEST_F(ClusterInfoTest, FourProcessesOfTwoServersRunHundredBarriers) {
  setenv("DISTBARRIER_JOB_SECRET", kSecret, 1);
  const std::string table = Write("table.json", Table(2, 2).dump(2));
  EXPECT_THAT(Run(table, 4, 1, 2), ::testing::IsEmpty());
}

TEST_F(ClusterInfoTest, TwoProcessesOfTwoThreadsRunHundredBarriers) {
  setenv("DISTBARRIER_JOB_SECRET", kSecret, 1);
  const std::string table = Write("table.json", Table(2, 2).dump(2));
  EXPECT_THAT(Run(table, 2, 2, 2), ::testing::IsEmpty());
}

TEST_F(ClusterInfoTest, FourThreadsOfOneProcessWithASecretRunHundredBarriers) {
  setenv("DISTBARRIER_JOB_SECRET", kSecret, 1);
  const std::string table = Write("table.json", Table(1, 4).dump());
  EXPECT_THAT(Run(table, 1, 4, 4), ::testing::IsEmpty());
}

// While rank 0 waits for the group, refused callers do not disturb it: a bad file, a rank
// outside the table, a wrong device, a wrong secret; then the right rank 1 completes it.
TEST_F(ClusterInfoTest, RefusedCallersLeaveTheGroupUnharmed) {
  setenv("DISTBARRIER_JOB_SECRET", kSecret, 1);
  const std::string table = Write("table.json", Table(1, 2).dump());
  Json bad = Table(1, 2);
  bad["server_list"][0]["device"][1]["rank_id"] = "0";
  const std::string bad_table = Write("bad.json", bad.dump());
  const pid_t root = fork();
  if (root == 0) {
    RunRank(table, 2, 0, 0);
    aclFinalize();
    _exit(0);
  }
  Outcome outcome = InitInChild(bad_table, 1, 1);
  EXPECT_EQ(outcome.code, 1);
  EXPECT_THAT(outcome.message, HasSubstr("server_list[0].device[1].rank_id: rank_id 0 appears twice"));
  EXPECT_THAT(outcome.message, HasSubstr("(error 1)"));  // HCCL_E_PARA
  outcome = InitInChild(table, 2, 1);
  EXPECT_THAT(outcome.message, HasSubstr("rank 2 is not a rank_id of the rank table (its rank ids are 0..1)"));
  outcome = InitInChild(table, 1, 0);
  EXPECT_THAT(outcome.message, HasSubstr("the rank table gives rank 1 device 1 (server_list[0].device[1].device_id), "
                                         "but this thread's current device is 0"));
  std::string wrong_secret = std::string("DISTBARRIER_JOB_SECRET=") + kSecret;
  wrong_secret.back() = '0';
  outcome = InitInChild(table, 1, 1, {wrong_secret});
  EXPECT_THAT(outcome.message, HasSubstr("presented a wrong secret"));
  RunRank(table, 2, 1, 1);
  int status = 0;
  waitpid(root, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_STREQ(area_->message[0], "");
  EXPECT_STREQ(area_->message[1], "");
}

TEST_F(ClusterInfoTest, BadArgumentsAreRefused) {
  const std::string table = Write("table.json", Table(1, 2).dump());
  HcclComm comm = nullptr;
  EXPECT_EQ(HcclCommInitClusterInfo(nullptr, 0, &comm), HCCL_E_PTR);
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, nullptr), HCCL_E_PTR);
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("call aclrtSetDevice before"));
  const std::string long_path(5000, 'x');
  EXPECT_EQ(HcclCommInitClusterInfo(long_path.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("longer than 4096 bytes"));
  EXPECT_EQ(HcclCommInitClusterInfo((directory_ + "/absent.json").c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("absent.json: cannot open"));
  ASSERT_ACL_OK(aclrtSetDevice(0));
  for (const char* port : {"80", "70000", "sixty"}) {
    setenv("HCCL_IF_BASE_PORT", port, 1);
    EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA) << port;
    EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("HCCL_IF_BASE_PORT=\"" + std::string(port) + "\" is not a port"));
  }
}

TEST_F(ClusterInfoTest, SecretsAreCheckedBeforeAnythingListens) {
  const std::string table = Write("table.json", Table(1, 2).dump());
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclComm comm = nullptr;
  setenv("DISTBARRIER_JOB_SECRET", "0123", 1);
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("DISTBARRIER_JOB_SECRET: the job secret must be 64 hex digits"));
  setenv("DISTBARRIER_JOB_SECRET", std::string(64, 'g').c_str(), 1);
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("hex digits only"));
  const std::string secret_file = Write("secret", kSecret);
  setenv("DISTBARRIER_JOB_SECRET_FILE", secret_file.c_str(), 1);
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("both DISTBARRIER_JOB_SECRET and DISTBARRIER_JOB_SECRET_FILE are set"));
  unsetenv("DISTBARRIER_JOB_SECRET");
  ASSERT_EQ(chmod(secret_file.c_str(), 0644), 0);
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("other users may access it (mode 0644); chmod 600 it"));
}

// Rank 0 alone: the connect timeout names the ranks that never came and, from the table, where
// they run.
TEST_F(ClusterInfoTest, TimeoutNamesTheMissingRanksAndTheirServers) {
  const std::string table = Write("table.json", Table(3, 2).dump());
  setenv("DISTBARRIER_JOB_SECRET", kSecret, 1);
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "1", 1);
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclComm comm = nullptr;
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_TIMEOUT);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("ranks [1, 2, 3, 4, 5] of 6 never connected"));
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("(in the rank table: rank 1 on server \"node_0\" (host_ip 127.0.0.1); "
                                              "ranks 2, 3 on server \"node_1\" (host_ip 127.0.0.1); ranks 4, 5 on "
                                              "server \"node_2\" (host_ip 127.0.0.1))"));
  // Servers beyond the eighth are left out.
  const std::string wide = Write("table.json", Table(10, 1).dump());
  EXPECT_EQ(HcclCommInitClusterInfo(wide.c_str(), 0, &comm), HCCL_E_TIMEOUT);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("rank 8 on server \"node_8\" (host_ip 127.0.0.1); ...)"));
  EXPECT_THAT(aclGetRecentErrMsg(), Not(HasSubstr("node_9")));
}

// Its ranks meet rank 0 over TCP even on one host, where nothing tells rank 0 who connects: a
// secret derived from the file would let any local user who can read it in.
TEST_F(ClusterInfoTest, OneHostTableWithoutASecretIsRefused) {
  const std::string table = Write("table.json", Table(1, 2).dump());
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclComm comm = nullptr;
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("the rank table (its ranks meet rank 0 at 127.0.0.1 over TCP, also on "
                                              "one host) carries no secret: set DISTBARRIER_JOB_SECRET"));
  EXPECT_EQ(comm, nullptr);
}

// A table over two hosts carries no secret: refused without one, naming the variables; with
// one, a rank whose server is not this host is refused naming its host_ip.
TEST_F(ClusterInfoTest, TableAcrossHostsNeedsASecretAndItsOwnHost) {
  const std::string table = Write("table.json", Table(2, 2, {"127.0.0.1", "198.18.0.2"}).dump());
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclComm comm = nullptr;
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 0, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("the rank table spans hosts (127.0.0.1 and 198.18.0.2, ...) and carries "
                                              "no secret: set DISTBARRIER_JOB_SECRET"));
  setenv("DISTBARRIER_JOB_SECRET", kSecret, 1);
  EXPECT_EQ(HcclCommInitClusterInfo(table.c_str(), 2, &comm), HCCL_E_PARA);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("rank 2 is on server \"node_1\" (server_list[1].host_ip 198.18.0.2) in "
                                              "the rank table, but no interface of this host has that address"));
}

}  // namespace
}  // namespace distbarrier::testing
