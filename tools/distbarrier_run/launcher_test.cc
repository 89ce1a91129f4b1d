// Tests of distbarrier-run, run as a user runs it: the built launcher on small /bin/sh programs.
//
// Nothing here sleeps to synchronize: the launcher's exit is awaited through its pipes and
// waitpid(), and the signal tests wait for every rank's "ready" line before signalling. The only
// clock is a generous guard that turns a hang into a failure instead of a stuck test.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
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

// Runs distbarrier-run with `args`. `on_output(pid, out)` is called each time its stdout grows.
Result RunLauncher(const std::vector<std::string>& args,
                   const std::function<void(pid_t, const std::string&)>& on_output = {},
                   const std::vector<std::pair<std::string, std::string>>& extra_env = {}) {
  Result result;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return result;
  }
  std::vector<std::string> full = {DISTBARRIER_RUN_PATH};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : full) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return result;
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
    for (const auto& [name, value] : extra_env) ::setenv(name.c_str(), value.c_str(), 1);
    ::execv(argv[0], argv.data());
    _exit(251);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  bool out_open = true;
  bool err_open = true;
  bool hung = false;
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      hung = true;
      break;
    }
    pollfd fds[2] = {{out_open ? out_pipe[0] : -1, POLLIN, 0}, {err_open ? err_pipe[0] : -1, POLLIN, 0}};
    int ready = ::poll(fds, 2, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      ADD_FAILURE() << "poll: " << std::strerror(errno);
      hung = true;
      break;
    }
    char buffer[4096];
    if (out_open && fds[0].revents != 0) {
      ssize_t n = ::read(out_pipe[0], buffer, sizeof buffer);
      if (n > 0) {
        result.out.append(buffer, static_cast<std::size_t>(n));
        if (on_output) on_output(pid, result.out);
      } else if (n == 0 || errno != EINTR) {
        out_open = false;
      }
    }
    if (err_open && fds[1].revents != 0) {
      ssize_t n = ::read(err_pipe[0], buffer, sizeof buffer);
      if (n > 0) {
        result.err.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        err_open = false;
      }
    }
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (hung) {
    ADD_FAILURE() << "distbarrier-run did not finish within " << kHangGuard.count() << " s; stdout:\n"
                  << result.out << "\nstderr:\n"
                  << result.err;
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (hung) return result;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
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

}  // namespace
