// Tests of distbarrier-run, run as a user runs it: the built launcher on small /bin/sh programs.
//
// Nothing here sleeps to synchronize: the launcher's exit is awaited through its pipes and
// waitpid(), and the signal tests wait for every rank's "ready" line before signalling. The only
// clock is a generous guard that turns a hang into a failure instead of a stuck test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#ifndef DISTBARRIER_RUN_PATH
#error "DISTBARRIER_RUN_PATH must name the distbarrier-run executable"
#endif

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kHangGuard = std::chrono::seconds(60);

struct Result {
  int exit_code = -1;  // the launcher's exit status; 128+signal if it was killed; -1 on a hang
  std::string out;
  std::string err;
};

// A launcher started and not yet collected.
struct Started {
  pid_t pid = -1;
  int out_fd = -1;
  int err_fd = -1;
};

// Starts distbarrier-run with `args`; the job secret variables of the test's own environment
// are not passed on, `extra_env` is.
Started StartLauncher(const std::vector<std::string>& args,
                      const std::vector<std::pair<std::string, std::string>>& extra_env = {}) {
  Started started;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return started;
  }
  std::vector<std::string> full = {DISTBARRIER_RUN_PATH};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : full) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return started;
  }
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
        ::dup2(err_pipe[1], STDERR_FILENO) < 0) {
      _exit(250);
    }
    // The launcher starts with stdio only, default signal dispositions and no blocked signals,
    // however the test itself was started (a background job of a script ignores SIGINT, say).
    ::close_range(STDERR_FILENO + 1, ~0U, 0);
    for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::unsetenv("DISTBARRIER_JOB_SECRET");
    ::unsetenv("DISTBARRIER_JOB_SECRET_FILE");
    for (const auto& [name, value] : extra_env) ::setenv(name.c_str(), value.c_str(), 1);
    ::execv(argv[0], argv.data());
    _exit(251);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  return {pid, out_pipe[0], err_pipe[0]};
}

// Waits for every started launcher, reading their output. `on_output(pid, out)` is called each
// time a launcher's stdout grows.
std::vector<Result> Collect(const std::vector<Started>& launchers,
                            const std::function<void(pid_t, const std::string&)>& on_output = {}) {
  std::vector<Result> results(launchers.size());
  std::vector<bool> out_open(launchers.size()), err_open(launchers.size());
  for (size_t i = 0; i < launchers.size(); ++i) {
    out_open[i] = launchers[i].out_fd >= 0;
    err_open[i] = launchers[i].err_fd >= 0;
  }
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  bool hung = false;
  auto any_open = [&] {
    for (size_t i = 0; i < launchers.size(); ++i) {
      if (out_open[i] || err_open[i]) return true;
    }
    return false;
  };
  while (any_open()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      hung = true;
      break;
    }
    std::vector<pollfd> fds;
    for (size_t i = 0; i < launchers.size(); ++i) {
      fds.push_back({out_open[i] ? launchers[i].out_fd : -1, POLLIN, 0});
      fds.push_back({err_open[i] ? launchers[i].err_fd : -1, POLLIN, 0});
    }
    int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      ADD_FAILURE() << "poll: " << std::strerror(errno);
      hung = true;
      break;
    }
    char buffer[4096];
    for (size_t i = 0; i < launchers.size(); ++i) {
      if (out_open[i] && fds[2 * i].revents != 0) {
        ssize_t n = ::read(launchers[i].out_fd, buffer, sizeof buffer);
        if (n > 0) {
          results[i].out.append(buffer, static_cast<std::size_t>(n));
          if (on_output) on_output(launchers[i].pid, results[i].out);
        } else if (n == 0 || errno != EINTR) {
          out_open[i] = false;
        }
      }
      if (err_open[i] && fds[2 * i + 1].revents != 0) {
        ssize_t n = ::read(launchers[i].err_fd, buffer, sizeof buffer);
        if (n > 0) {
          results[i].err.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          err_open[i] = false;
        }
      }
    }
  }
  for (size_t i = 0; i < launchers.size(); ++i) {
    if (launchers[i].pid < 0) continue;
    ::close(launchers[i].out_fd);
    ::close(launchers[i].err_fd);
    if (hung) {
      ADD_FAILURE() << "distbarrier-run did not finish within " << kHangGuard.count() << " s; stdout:\n"
                    << results[i].out << "\nstderr:\n"
                    << results[i].err;
      ::kill(launchers[i].pid, SIGKILL);
    }
    int status = 0;
    while (::waitpid(launchers[i].pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (hung) continue;
    if (WIFEXITED(status)) results[i].exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) results[i].exit_code = 128 + WTERMSIG(status);
  }
  return results;
}

// Runs distbarrier-run with `args`. `on_output(pid, out)` is called each time its stdout grows.
Result RunLauncher(const std::vector<std::string>& args,
                   const std::function<void(pid_t, const std::string&)>& on_output = {},
                   const std::vector<std::pair<std::string, std::string>>& extra_env = {}) {
  return Collect({StartLauncher(args, extra_env)}, on_output)[0];
}

// distbarrier-run -n <n> <launcher options> -- /bin/sh -c <script>
Result RunScript(int n, const std::string& script, std::vector<std::string> options = {},
                 const std::function<void(pid_t, const std::string&)>& on_output = {},
                 const std::vector<std::pair<std::string, std::string>>& extra_env = {}) {
  std::vector<std::string> args = {"-n", std::to_string(n)};
  args.insert(args.end(), options.begin(), options.end());
  args.insert(args.end(), {"--", "/bin/sh", "-c", script});
  return RunLauncher(args, on_output, extra_env);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

int CountLinesStartingWith(const std::string& text, const std::string& prefix) {
  int count = 0;
  for (const std::string& line : Lines(text)) count += line.rfind(prefix, 0) == 0 ? 1 : 0;
  return count;
}

// Sends `sig` to the launcher once all `n` ranks have printed their "ready" line.
std::function<void(pid_t, const std::string&)> SignalWhenReady(int n, int sig) {
  auto sent = std::make_shared<bool>(false);
  return [n, sig, sent](pid_t launcher, const std::string& out) {
    if (!*sent && CountLinesStartingWith(out, "ready ") == n) {
      *sent = true;
      ::kill(launcher, sig);
    }
  };
}

TEST(DistbarrierRun, AllRanksExitZeroWithTheirRankEnvironment) {
  // Inherited values of the launcher's variables must not leak through.
  Result r = RunScript(4,
                       "echo \"rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK lws=$LOCAL_WORLD_SIZE "
                       "db=$DISTBARRIER_RANK dbw=$DISTBARRIER_WORLD_SIZE dbl=$DISTBARRIER_LOCAL_RANK "
                       "out=${DISTBARRIER_ROOT_INFO_OUT_FD:+set} in=${DISTBARRIER_ROOT_INFO_IN_FD:+set}\"",
                       {}, {}, {{"RANK", "99"}, {"WORLD_SIZE", "99"}, {"DISTBARRIER_ROOT_INFO_IN_FD", "42"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  std::sort(lines.begin(), lines.end());
  std::vector<std::string> expected;
  for (int i = 0; i < 4; ++i) {
    std::string s = std::to_string(i);
    expected.push_back("rank=" + s + " world=4 local=" + s + " lws=4 db=" + s + " dbw=4 dbl=" + s +
                       (i == 0 ? " out=set in=" : " out= in=set"));
  }
  EXPECT_EQ(lines, expected);
  EXPECT_THAT(r.err, HasSubstr("distbarrier-run: 4 ranks, all exited 0"));
}

TEST(DistbarrierRun, SingleRank) {
  Result r = RunScript(1, "echo \"rank=$RANK world=$WORLD_SIZE\"");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "rank=0 world=1\n");
  EXPECT_THAT(r.err, HasSubstr("1 rank, all exited 0"));
}

TEST(DistbarrierRun, ProgramOptionsAreNotTheLaunchers) {
  // No "--": everything from the program on belongs to the program, even "-n".
  Result r = RunLauncher({"-n", "2", "/bin/sh", "-c", "echo \"$RANK:$*\"", "sh", "-n", "5", "--timeout"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"0:-n 5 --timeout", "1:-n 5 --timeout"}));
}

TEST(DistbarrierRun, FailingRankStopsTheOthersAndGivesItsStatus) {
  // Ranks other than 2 would sleep forever: the launcher returning at all shows they were stopped.
  Result r = RunScript(4, "if [ \"$RANK\" = 2 ]; then exit 3; fi; exec sleep 1000");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("rank 2 (pid "));
  EXPECT_THAT(r.err, HasSubstr("exited with status 3; stopping the other ranks"));
  EXPECT_THAT(r.err, HasSubstr("rank 2 failed first (exited with status 3)"));
  for (int rank : {0, 1, 3}) {
    bool terminated = false;
    for (const std::string& line : Lines(r.err)) {
      terminated |= line.find("rank " + std::to_string(rank) + " (pid ") != std::string::npos &&
                    line.find("killed by signal 15") != std::string::npos;
    }
    EXPECT_TRUE(terminated) << "rank " << rank << " was not reported terminated:\n" << r.err;
  }
}

TEST(DistbarrierRun, RankKilledBySignalGives128PlusSignal) {
  Result r = RunScript(3, "if [ \"$RANK\" = 1 ]; then kill -KILL $$; fi; exec sleep 1000");
  EXPECT_EQ(r.exit_code, 137) << r.err;
  EXPECT_THAT(r.err, HasSubstr("rank 1 (pid "));
  EXPECT_THAT(r.err, HasSubstr("was killed by signal 9 ("));
}

TEST(DistbarrierRun, RelaysRootInfoFromRankZeroToEveryRank) {
  // Rank 0 sends 4108 random bytes and prints their checksum; every other rank reads its pipe to
  // EOF and prints the checksum of what it got.
  Result r =
      RunScript(4,
                "if [ \"$RANK\" = 0 ]; then\n"
                "  echo \"$RANK $(head -c 4108 /dev/urandom | tee /dev/fd/$DISTBARRIER_ROOT_INFO_OUT_FD | cksum)\"\n"
                "else\n"
                "  echo \"$RANK $(cksum < /dev/fd/$DISTBARRIER_ROOT_INFO_IN_FD)\"\n"
                "fi");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<int, std::string> sums;
  for (const std::string& line : Lines(r.out)) {
    std::istringstream fields(line);
    int rank = -1;
    std::string crc;
    std::string bytes;
    fields >> rank >> crc >> bytes;
    EXPECT_EQ(bytes, "4108") << line;
    sums[rank] = crc;
  }
  ASSERT_EQ(sums.size(), 4u) << r.out;
  for (int rank = 1; rank < 4; ++rank) EXPECT_EQ(sums[rank], sums[0]) << "rank " << rank << "\n" << r.out;
}

TEST(DistbarrierRun, RanksSeeEofWhenRankZeroExitsWithoutTheRootInfo) {
  // Rank 0 sends 100 bytes only and exits. The other ranks must see EOF (and nothing of the
  // partial root info): a launcher or sibling holding a stray write end would hang them.
  Result r = RunScript(4,
                       "if [ \"$RANK\" = 0 ]; then\n"
                       "  head -c 100 /dev/zero > /dev/fd/$DISTBARRIER_ROOT_INFO_OUT_FD\n"
                       "else\n"
                       "  echo \"$RANK $(cksum < /dev/fd/$DISTBARRIER_ROOT_INFO_IN_FD)\"\n"
                       "fi");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"1 4294967295 0", "2 4294967295 0", "3 4294967295 0"}));
  EXPECT_THAT(r.err, HasSubstr("after 100 of 4108 bytes"));
}

TEST(DistbarrierRun, RanksHoldOnlyTheirOwnRootInfoFd) {
  // Besides stdio, the only pipe a rank holds is its own root-info end: no other rank's end and
  // none of the launcher's leak in. (Only pipes are looked at: the shell's glob holds a directory
  // stream on /proc/$$/fd while it lists it.)
  Result r =
      RunScript(3,
                "fd=${DISTBARRIER_ROOT_INFO_OUT_FD:-$DISTBARRIER_ROOT_INFO_IN_FD}\n"
                "pipes=\"\"\n"
                "for f in /proc/$$/fd/*; do\n"
                "  n=${f##*/}\n"
                "  case $n in 0|1|2) continue;; esac\n"
                "  if [ -p \"$f\" ]; then pipes=\"$pipes $n\"; fi\n"
                "done\n"
                "if [ \"$pipes\" = \" $fd\" ]; then echo \"$RANK ok\"; else echo \"$RANK pipes:$pipes own:$fd\"; fi");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"0 ok", "1 ok", "2 ok"}));
}

TEST(DistbarrierRun, ForwardsSigtermToTheRanks) {
  Result r = RunScript(3, "trap 'exit 7' TERM; echo \"ready $RANK\"; while :; do sleep 0.1; done", {},
                       SignalWhenReady(3, SIGTERM));
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_EQ(CountLinesStartingWith(r.out, "ready "), 3) << r.out;
  EXPECT_THAT(r.err, HasSubstr("received SIGTERM; forwarding it to the 3 running ranks"));
}

TEST(DistbarrierRun, ForwardsSigintToTheRanks) {
  Result r = RunScript(2, "trap 'exit 5' INT; echo \"ready $RANK\"; while :; do sleep 0.1; done", {},
                       SignalWhenReady(2, SIGINT));
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_THAT(r.err, HasSubstr("received SIGINT; forwarding it to the 2 running ranks"));
}

TEST(DistbarrierRun, KillsRanksThatIgnoreSigtermAfterTheGrace) {
  // The ranks ignore SIGTERM (an ignored signal stays ignored across exec), so only SIGKILL
  // after --kill-grace ends them; the first to be reaped gives 128+9.
  Result r = RunScript(2, "trap '' TERM; echo \"ready $RANK\"; exec sleep 1000", {"--kill-grace", "0.2"},
                       SignalWhenReady(2, SIGTERM));
  EXPECT_EQ(r.exit_code, 137) << r.err;
  EXPECT_THAT(r.err, HasSubstr("sending SIGKILL"));
}

TEST(DistbarrierRun, TimeoutStopsTheJobWith124) {
  Result r = RunScript(2, "exec sleep 1000", {"--timeout", "1"});
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_THAT(r.err, HasSubstr("ran longer than --timeout 1 s"));
  EXPECT_THAT(r.err, HasSubstr("timed out after 1 s"));
}

TEST(DistbarrierRun, JobWithinTheTimeoutExitsZero) {
  Result r = RunScript(2, "exit 0", {"--timeout", "600"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(DistbarrierRun, BadUsageExits2) {
  const std::vector<std::vector<std::string>> cases = {
      {"--", "/bin/true"},         // no -n
      {"-n", "0", "/bin/true"},    // -n < 1
      {"-n", "-3", "/bin/true"},   // -n < 1
      {"-n", "abc", "/bin/true"},  // not a number
      {"-n", "2"},                 // no program
      {"-n", "2", "--"},           // no program
      {"-n", "2", "--bogus", "/bin/true"},
      {"-n", "2", "--timeout", "-1", "/bin/true"},
      {"-n", "2", "--kill-grace", "x", "/bin/true"},
  };
  for (const std::vector<std::string>& args : cases) {
    std::string joined;
    for (const std::string& arg : args) joined += " " + arg;
    Result r = RunLauncher(args);
    EXPECT_EQ(r.exit_code, 2) << "distbarrier-run" << joined << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("distbarrier-run: ")) << joined;
    EXPECT_THAT(r.err, HasSubstr("usage: distbarrier-run -n N")) << joined;
    EXPECT_EQ(r.out, "") << joined;
  }
}

TEST(DistbarrierRun, HelpExitsZero) {
  Result r = RunLauncher({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--nproc-per-node"));
  EXPECT_THAT(r.out, HasSubstr("DISTBARRIER_ROOT_INFO_OUT_FD"));
}

TEST(DistbarrierRun, ProgramThatCannotBeExecutedExits127) {
  for (const std::string program : {"/nonexistent/distbarrier-program", "distbarrier-no-such-program"}) {
    Result r = RunLauncher({"-n", "2", "--", program, "arg"});
    EXPECT_EQ(r.exit_code, 127) << r.err;
    EXPECT_THAT(r.err, HasSubstr("distbarrier-run: cannot execute '" + program + "': No such file or directory"));
    EXPECT_THAT(r.err, HasSubstr("exited with status 127"));
    EXPECT_THAT(r.err, Not(HasSubstr("all exited 0")));
  }
}

// ---- several nodes: launchers on 127.0.0.1 standing for the nodes -------------------------

const char* const kSecret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const char* const kOtherSecret = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

// A TCP port nothing listens on now (the kernel's pick; free again once closed).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ADD_FAILURE() << "no free port: " << std::strerror(errno);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::vector<std::string> NodeArgs(int node_rank, int nproc, int port, const std::string& script,
                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--nnodes",
                                   "2",
                                   "--node-rank",
                                   std::to_string(node_rank),
                                   "--master-addr",
                                   "127.0.0.1",
                                   "--master-port",
                                   std::to_string(port),
                                   "-n",
                                   std::to_string(nproc)};
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), {"--", "/bin/sh", "-c", script});
  return args;
}

// Rank 0 sends 4108 random bytes; every rank prints its variables and the checksum of the root
// info it sent or got.
const char* const kPrintRootInfo =
    "vars=\"$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $NODE_RANK $DISTBARRIER_NODE_RANK $MASTER_ADDR "
    "$MASTER_PORT\"\n"
    "if [ \"$RANK\" = 0 ]; then\n"
    "  echo \"$vars $(head -c 4108 /dev/urandom | tee /dev/fd/$DISTBARRIER_ROOT_INFO_OUT_FD | cksum)\"\n"
    "else\n"
    "  echo \"$vars $(cksum < /dev/fd/$DISTBARRIER_ROOT_INFO_IN_FD)\"\n"
    "fi";

// "rank -> line" of kPrintRootInfo's output.
std::map<int, std::string> ByRank(const std::string& out) {
  std::map<int, std::string> lines;
  for (const std::string& line : Lines(out)) lines[std::stoi(line)] = line;
  return lines;
}

std::string Checksum(const std::string& line) {
  std::istringstream fields(line);
  std::vector<std::string> words;
  for (std::string word; fields >> word;) words.push_back(word);
  return words.size() >= 2 ? words[words.size() - 2] + " " + words.back() : "";
}

TEST(DistbarrierRunNodes, TwoNodesGetRankZerosRootInfoAndGlobalRanks) {
  const int port = FreePort();
  const std::vector<std::pair<std::string, std::string>> env = {{"DISTBARRIER_JOB_SECRET", kSecret}};
  // Node 1 first: it waits for node 0 to listen.
  Started node1 = StartLauncher(NodeArgs(1, 2, port, kPrintRootInfo), env);
  Started node0 = StartLauncher(NodeArgs(0, 2, port, kPrintRootInfo), env);
  std::vector<Result> results = Collect({node0, node1});
  ASSERT_EQ(results[0].exit_code, 0) << results[0].err;
  ASSERT_EQ(results[1].exit_code, 0) << results[1].err;
  EXPECT_THAT(results[0].err, HasSubstr("node 0 of 2: 2 ranks, all exited 0"));
  EXPECT_THAT(results[1].err, HasSubstr("node 1 of 2: 2 ranks, all exited 0"));
  std::map<int, std::string> lines = ByRank(results[0].out);
  for (const auto& [rank, line] : ByRank(results[1].out)) lines[rank] = line;
  ASSERT_EQ(lines.size(), 4u) << results[0].out << results[1].out;
  // The ranks' MASTER_PORT is the next one: the launcher of node 0 listens at --master-port.
  const std::string master = " 127.0.0.1 " + std::to_string(port + 1) + " ";
  EXPECT_THAT(lines[0], HasSubstr("0 0 4 2 0 0" + master));
  EXPECT_THAT(lines[1], HasSubstr("1 1 4 2 0 0" + master));
  EXPECT_THAT(lines[2], HasSubstr("2 0 4 2 1 1" + master));
  EXPECT_THAT(lines[3], HasSubstr("3 1 4 2 1 1" + master));
  EXPECT_THAT(Checksum(lines[0]), testing::EndsWith(" 4108"));
  for (int rank = 1; rank < 4; ++rank) EXPECT_EQ(Checksum(lines[rank]), Checksum(lines[0])) << lines[rank];
}

// Node 0's rank 0 stays until the test lets it go (a FIFO), so node 0 serves throughout: a
// node with a wrong secret is refused with a reason on both sides, and the right node after it
// still gets the root info.
TEST(DistbarrierRunNodes, WrongSecretIsRefusedAndTheRightNodeStillJoins) {
  const int port = FreePort();
  char directory[] = "/tmp/distbarrier_run_test_XXXXXX";
  ASSERT_NE(::mkdtemp(directory), nullptr);
  const std::string fifo = std::string(directory) + "/go";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Read-write: opening never blocks, and rank 0's read waits for the line below.
  const int go = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(go, 0);
  const std::string node0_script =
      std::string(kPrintRootInfo) + "\nif [ \"$RANK\" = 0 ]; then read line < " + fifo + "; fi";
  Started node0 = StartLauncher(NodeArgs(0, 2, port, node0_script), {{"DISTBARRIER_JOB_SECRET", kSecret}});
  Result wrong = RunLauncher(NodeArgs(1, 2, port, kPrintRootInfo), {}, {{"DISTBARRIER_JOB_SECRET", kOtherSecret}});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
  EXPECT_THAT(wrong.err, HasSubstr("node 1: cannot get the root info: node 0 at 127.0.0.1:" + std::to_string(port) +
                                   " refused this node: wrong job secret"));
  EXPECT_THAT(wrong.err, HasSubstr("node 1 of 2: 2 ranks, launcher error; exit code 1"));
  Result right = RunLauncher(NodeArgs(1, 2, port, kPrintRootInfo), {}, {{"DISTBARRIER_JOB_SECRET", kSecret}});
  EXPECT_EQ(right.exit_code, 0) << right.err;
  ASSERT_EQ(::write(go, "go\n", 3), 3);
  Result served = Collect({node0})[0];
  ::close(go);
  ::unlink(fifo.c_str());
  ::rmdir(directory);
  EXPECT_EQ(served.exit_code, 0) << served.err;
  EXPECT_THAT(served.err, HasSubstr("refused the launcher at 127.0.0.1: wrong job secret"));
  std::map<int, std::string> lines = ByRank(served.out);
  for (const auto& [rank, line] : ByRank(right.out)) lines[rank] = line;
  ASSERT_EQ(lines.size(), 4u) << served.out << right.out;
  for (int rank = 1; rank < 4; ++rank) EXPECT_EQ(Checksum(lines[rank]), Checksum(lines[0])) << lines[rank];
}

TEST(DistbarrierRunNodes, NodeZeroRefusesAnotherShapeOfJob) {
  const int port = FreePort();
  const std::vector<std::pair<std::string, std::string>> env = {{"DISTBARRIER_JOB_SECRET", kSecret}};
  // Node 0 serves for at most 5 s after its ranks are done; node 1 asks with 3 ranks per node.
  Started node0 = StartLauncher(NodeArgs(0, 2, port, kPrintRootInfo, {"--connect-timeout", "5"}), env);
  Started node1 = StartLauncher(NodeArgs(1, 3, port, kPrintRootInfo), env);
  std::vector<Result> results = Collect({node0, node1});
  EXPECT_EQ(results[1].exit_code, 1) << results[1].err;
  EXPECT_THAT(results[1].err, HasSubstr("refused this node: --nproc-per-node 3 differs from node 0's 2"));
  EXPECT_EQ(results[0].exit_code, 0) << results[0].err;
  EXPECT_THAT(results[0].err, HasSubstr("refused the launcher at 127.0.0.1: --nproc-per-node 3 differs"));
}

TEST(DistbarrierRunNodes, NodeWithoutNodeZeroGivesUpAfterTheConnectTimeout) {
  const int port = FreePort();
  // The ranks wait for their root info; only the launcher giving up ends them.
  Result r = RunLauncher(NodeArgs(1, 2, port, "cat /dev/fd/$DISTBARRIER_ROOT_INFO_IN_FD > /dev/null; exec sleep 1000",
                                  {"--connect-timeout", "1"}),
                         {}, {{"DISTBARRIER_JOB_SECRET", kSecret}});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 1: cannot get the root info: no root info from node 0 at 127.0.0.1:" +
                               std::to_string(port) + " within the connect timeout (last: Connection refused)"));
  EXPECT_THAT(r.err, HasSubstr("stopping this node's ranks"));
}

TEST(DistbarrierRunNodes, BadNodeOptionsExit2) {
  const std::vector<std::pair<std::string, std::string>> secret = {{"DISTBARRIER_JOB_SECRET", kSecret}};
  struct Case {
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--nnodes", "2", "-n", "2", "/bin/true"},
       {},
       "a job of several nodes (--nnodes) needs a job secret: set "
       "DISTBARRIER_JOB_SECRET"},
      {{"--nnodes", "2", "-n", "2", "/bin/true"}, {{"DISTBARRIER_JOB_SECRET", "abc"}}, "must be 64 hex digits"},
      {{"--nnodes", "2", "--node-rank", "2", "-n", "2", "/bin/true"}, secret, "--node-rank 2 is outside 0..1"},
      {{"--nnodes", "0", "-n", "2", "/bin/true"}, secret, "--nnodes must be at least 1"},
      {{"--nnodes", "2", "--master-port", "65535", "-n", "2", "/bin/true"},
       secret,
       "--master-port must be in 1..65534"},
      {{"--nnodes", "2", "--master-addr", "no-such-host.invalid", "-n", "2", "/bin/true"},
       secret,
       "--master-addr: cannot resolve 'no-such-host.invalid'"},
      {{"--nnodes", "2", "--connect-timeout", "0", "-n", "2", "/bin/true"}, secret, "--connect-timeout must be"},
      {{"--nnodes", "2", "--secret-file", "/nonexistent/secret", "-n", "2", "/bin/true"},
       {},
       "--secret-file: job secret file /nonexistent/secret: cannot open"},
  };
  for (const Case& c : cases) {
    Result r = RunLauncher(c.args, {}, c.env);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_THAT(r.err, HasSubstr("usage: distbarrier-run -n N"));
  }
}

// ---- a rank table ---------------------------------------------------------------------------

class DistbarrierRunRankTable : public ::testing::Test {
 protected:
  void SetUp() override {
    char directory[] = "/tmp/distbarrier_run_test_XXXXXX";
    ASSERT_NE(::mkdtemp(directory), nullptr);
    directory_ = directory;
  }
  void TearDown() override {
    ::unlink(Path().c_str());
    ::rmdir(directory_.c_str());
  }
  std::string Path() const { return directory_ + "/rank_table.json"; }
  // Two servers of two devices; the second on `second_host`.
  std::string Write(const std::string& second_host = "127.0.0.1", const std::string& first_rank_id = "0") {
    std::string text =
        "{\"status\": \"completed\", \"version\": \"1.2\", \"server_count\": \"2\", \"server_list\": ["
        "{\"server_id\": \"node_0\", \"host_ip\": \"127.0.0.1\", \"device\": ["
        "{\"device_id\": \"0\", \"rank_id\": \"" +
        first_rank_id +
        "\"}, {\"device_id\": \"1\", \"rank_id\": \"1\"}]},"
        "{\"server_id\": \"node_1\", \"host_ip\": \"" +
        second_host +
        "\", \"device\": ["
        "{\"device_id\": \"3\", \"rank_id\": \"2\"}, {\"device_id\": \"2\", \"rank_id\": \"3\"}]}]}";
    FILE* file = std::fopen(Path().c_str(), "w");
    std::fputs(text.c_str(), file);
    std::fclose(file);
    return Path();
  }
  std::string directory_;
};

TEST_F(DistbarrierRunRankTable, StartsThisNodesServerWithCannsVariables) {
  const std::string table = Write();
  Result r = RunLauncher({"--rank-table", table, "--node-rank", "1", "--", "/bin/sh", "-c",
                          "echo \"$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $NODE_RANK $DEVICE_ID $RANK_ID "
                          "$RANK_SIZE $MASTER_ADDR $RANK_TABLE_FILE $DISTBARRIER_RANK_TABLE "
                          "in=${DISTBARRIER_ROOT_INFO_IN_FD:+set} out=${DISTBARRIER_ROOT_INFO_OUT_FD:+set}\""},
                         {}, {{"DISTBARRIER_ROOT_INFO_IN_FD", "7"}, {"DISTBARRIER_JOB_SECRET", kSecret}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "2 0 4 2 1 3 2 4 127.0.0.1 " + table + " " + table + " in= out=",
                       "3 1 4 2 1 2 3 4 127.0.0.1 " + table + " " + table + " in= out=",
                   }));
}

// One server: this launcher starts every rank, so it makes the secret they share when none is
// given (HcclCommInitClusterInfo requires one), a fresh one per job.
TEST_F(DistbarrierRunRankTable, OneServerTableGetsAFreshSecretWhenNoneIsGiven) {
  const std::string table = directory_ + "/one.json";
  FILE* file = std::fopen(table.c_str(), "w");
  std::fputs(
      "{\"status\": \"completed\", \"version\": \"1.2\", \"server_count\": \"1\", \"server_list\": ["
      "{\"server_id\": \"node_0\", \"host_ip\": \"127.0.0.1\", \"device\": ["
      "{\"device_id\": \"0\", \"rank_id\": \"0\"}, {\"device_id\": \"1\", \"rank_id\": \"1\"}]}]}",
      file);
  std::fclose(file);
  const std::vector<std::string> args = {"--rank-table", table, "--",
                                         "/bin/sh",      "-c",  "echo \"$DISTBARRIER_JOB_SECRET\""};
  Result first = RunLauncher(args);
  Result second = RunLauncher(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const std::vector<std::string> lines = Lines(first.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], lines[1]) << "both ranks of the job share it";
  EXPECT_THAT(lines[0], ::testing::MatchesRegex("[0-9a-f]{64}"));
  EXPECT_NE(Lines(second.out).front(), lines[0]) << "a fresh one per job";
  Result given = RunLauncher(args, {}, {{"DISTBARRIER_JOB_SECRET", kSecret}});
  EXPECT_EQ(Lines(given.out), (std::vector<std::string>{kSecret, kSecret}));
}

TEST_F(DistbarrierRunRankTable, BadTablesAndOptionsExit2) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::string good = Write();
  const std::vector<Case> cases = {
      {{"--rank-table", good, "/bin/true"}, "the rank table has 2 servers: give --node-rank"},
      {{"--rank-table", good, "--node-rank", "2", "/bin/true"}, "--node-rank 2 is not a server of the rank table"},
      {{"--rank-table", good, "--node-rank", "0", "-n", "3", "/bin/true"},
       "-n 3 but server \"node_0\" of the rank table has 2 devices"},
      {{"--rank-table", good, "--node-rank", "0", "--nnodes", "2", "/bin/true"}, "leave out --nnodes"},
      {{"--rank-table", directory_ + "/absent.json", "/bin/true"}, "absent.json: cannot open"},
  };
  for (const Case& c : cases) {
    Result r = RunLauncher(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
  Write("127.0.0.1", "7");
  Result r = RunLauncher({"--rank-table", Path(), "--node-rank", "0", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--rank-table: rank table " + Path() +
                               ": server_list[0].device: the rank ids of one "
                               "server must be contiguous"));
  Write("198.18.0.2");
  r = RunLauncher({"--rank-table", Path(), "--node-rank", "0", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("a rank table of several servers needs a job secret"));
  r = RunLauncher({"--rank-table", Path(), "--node-rank", "0", "/bin/true"}, {}, {{"DISTBARRIER_JOB_SECRET", kSecret}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
