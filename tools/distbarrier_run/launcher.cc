// distbarrier-run: starts N ranks of a program, relays rank 0's root info to the other ranks
// through pipes, forwards SIGINT/SIGTERM, and stops every rank as soon as one of them fails.
//
// Everything happens in one single-threaded poll() loop: signals (SIGCHLD, SIGINT, SIGTERM) are
// blocked and read from a signalfd, the root-info pipes are non-blocking on the launcher's side,
// and the two deadlines (--timeout, then --kill-grace) are the poll timeout.
#include "launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace distbarrier::run {
namespace {

using Clock = std::chrono::steady_clock;

// The environment variables the launcher sets; inherited values of these names are dropped.
constexpr std::array<std::string_view, 9> kOwnVariables = {"DISTBARRIER_RANK",
                                                           "DISTBARRIER_WORLD_SIZE",
                                                           "DISTBARRIER_LOCAL_RANK",
                                                           "RANK",
                                                           "WORLD_SIZE",
                                                           "LOCAL_RANK",
                                                           "LOCAL_WORLD_SIZE",
                                                           "DISTBARRIER_ROOT_INFO_OUT_FD",
                                                           "DISTBARRIER_ROOT_INFO_IN_FD"};

// One line on stderr, written with a single write() so that it does not interleave with the
// ranks' own output.
[[gnu::format(printf, 1, 2)]] void Say(const char* format, ...) {
  char buffer[1024];
  int prefix = std::snprintf(buffer, sizeof buffer, "distbarrier-run: ");
  va_list args;
  va_start(args, format);
  int body = std::vsnprintf(buffer + prefix, sizeof buffer - prefix - 1, format, args);
  va_end(args);
  std::size_t length = std::min<std::size_t>(prefix + std::max(body, 0), sizeof buffer - 2);
  buffer[length++] = '\n';
  std::size_t done = 0;
  while (done < length) {
    ssize_t n = ::write(STDERR_FILENO, buffer + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Moves a descriptor out of the 0..2 range (possible when the launcher runs with a closed stdio
// stream), so that a rank's relay fd never doubles as its stdin/stdout/stderr.
int AboveStdio(int fd) {
  if (fd > STDERR_FILENO) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  ::close(fd);
  return moved;
}

bool Failed(int status) {
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitInternal;
}

std::string Describe(int status) {
  char text[128];
  if (WIFEXITED(status)) {
    std::snprintf(text, sizeof text, "exited with status %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    std::snprintf(text, sizeof text, "was killed by signal %d (%s)", sig, name ? name : "unknown");
  } else {
    std::snprintf(text, sizeof text, "ended with wait status %#x", static_cast<unsigned>(status));
  }
  return text;
}

std::string Seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", seconds);
  return text;
}

Clock::duration ToDuration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

struct Rank {
  int index = 0;
  pid_t pid = -1;
  bool running = false;
  int status = 0;
  int launcher_fd = -1;  // rank 0: read end of its pipe; others: write end of theirs
  int child_fd = -1;     // the end the rank inherits; closed in the launcher after the fork
  std::size_t sent = 0;  // root-info bytes written to this rank so far (ranks >= 1)
};

class Launcher {
 public:
  explicit Launcher(const Options& options) : options_(options) {}
  ~Launcher() {
    for (Rank& rank : ranks_) {
      CloseFd(rank.launcher_fd);
      CloseFd(rank.child_fd);
    }
    CloseFd(signal_fd_);
  }

  int Run() {
    if (!SetUpSignals() || !CreatePipes()) return kExitInternal;
    start_ = Clock::now();
    if (options_.timeout_s > 0) job_deadline_ = start_ + ToDuration(options_.timeout_s);
    bool spawned = SpawnAll();
    for (Rank& rank : ranks_) CloseFd(rank.child_fd);  // only the ranks may hold these now
    if (!spawned) {
      // Could not start every rank: stop the ones that did start and report an internal error.
      internal_error_ = true;
      BeginStop();
    }
    Loop();
    return Summarize();
  }

 private:
  bool SetUpSignals() {
    // A SIGCHLD inherited as SIG_IGN would make the kernel reap the ranks behind our back, and a
    // rank that exits before reading its root info must not kill the launcher with SIGPIPE.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    struct sigaction ign = dfl;
    ign.sa_handler = SIG_IGN;
    if (::sigaction(SIGCHLD, &dfl, &old_sigchld_) != 0 || ::sigaction(SIGPIPE, &ign, &old_sigpipe_) != 0) {
      Say("sigaction: %s", std::strerror(errno));
      return false;
    }
    sigset_t mask;
    ::sigemptyset(&mask);
    ::sigaddset(&mask, SIGCHLD);
    // A SIGINT or SIGTERM ignored on entry (e.g. SIGINT for a background job of a script) stays
    // ignored, by the launcher and by the ranks, as a shell does it; the others are caught.
    for (int sig : {SIGINT, SIGTERM}) {
      struct sigaction current {};
      if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
      ::sigaddset(&mask, sig);
    }
    if (::sigprocmask(SIG_BLOCK, &mask, &old_mask_) != 0) {
      Say("sigprocmask: %s", std::strerror(errno));
      return false;
    }
    signal_fd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) {
      Say("signalfd: %s", std::strerror(errno));
      return false;
    }
    return true;
  }

  bool CreatePipes() {
    ranks_.resize(static_cast<std::size_t>(options_.world_size));
    for (std::size_t i = 0; i < ranks_.size(); ++i) {
      Rank& rank = ranks_[i];
      rank.index = static_cast<int>(i);
      int ends[2];
      if (::pipe2(ends, O_CLOEXEC) != 0) {
        Say("cannot create the root-info pipe for rank %zu: %s", i, std::strerror(errno));
        return false;
      }
      // Rank 0 writes, the launcher reads; for every other rank the launcher writes.
      int read_end = AboveStdio(ends[0]);
      int write_end = AboveStdio(ends[1]);
      rank.launcher_fd = i == 0 ? read_end : write_end;
      rank.child_fd = i == 0 ? write_end : read_end;
      if (rank.launcher_fd < 0 || rank.child_fd < 0 ||
          ::fcntl(rank.launcher_fd, F_SETFL, ::fcntl(rank.launcher_fd, F_GETFL) | O_NONBLOCK) != 0) {
        Say("cannot set up the root-info pipe for rank %zu: %s", i, std::strerror(errno));
        return false;
      }
    }
    return true;
  }

  std::vector<std::string> BaseEnvironment() const {
    std::vector<std::string> env;
    for (char** entry = environ; entry && *entry; ++entry) {
      std::string_view text(*entry);
      std::string_view name = text.substr(0, text.find('='));
      if (std::find(kOwnVariables.begin(), kOwnVariables.end(), name) == kOwnVariables.end()) {
        env.emplace_back(text);
      }
    }
    return env;
  }

  bool SpawnAll() {
    const std::vector<std::string> base = BaseEnvironment();
    std::vector<char*> argv;
    for (const std::string& arg : options_.command) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const std::string world = std::to_string(options_.world_size);

    for (Rank& rank : ranks_) {
      // Everything the child needs is built before fork(); the child only calls
      // async-signal-safe functions (plus snprintf/strerror on the exec error path).
      std::vector<std::string> env = base;
      const std::string index = std::to_string(rank.index);
      for (const char* name : {"DISTBARRIER_RANK", "DISTBARRIER_LOCAL_RANK", "RANK", "LOCAL_RANK"}) {
        env.push_back(std::string(name) + "=" + index);
      }
      for (const char* name : {"DISTBARRIER_WORLD_SIZE", "WORLD_SIZE", "LOCAL_WORLD_SIZE"}) {
        env.push_back(std::string(name) + "=" + world);
      }
      env.push_back(std::string(rank.index == 0 ? "DISTBARRIER_ROOT_INFO_OUT_FD=" : "DISTBARRIER_ROOT_INFO_IN_FD=") +
                    std::to_string(rank.child_fd));
      std::vector<char*> envp;
      for (std::string& entry : env) envp.push_back(entry.data());
      envp.push_back(nullptr);

      pid_t pid = ::fork();
      if (pid < 0) {
        Say("cannot start rank %d: fork: %s", rank.index, std::strerror(errno));
        return false;
      }
      if (pid == 0) ExecChild(rank.child_fd, argv.data(), envp.data());
      rank.pid = pid;
      rank.running = true;
      ++running_;
    }
    return true;
  }

  [[noreturn]] void ExecChild(int own_fd, char** argv, char** envp) {
    // Undo the launcher's signal set-up: the program starts as if started by the launcher's parent.
    ::sigaction(SIGCHLD, &old_sigchld_, nullptr);
    ::sigaction(SIGPIPE, &old_sigpipe_, nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    // Every descriptor the launcher opened is close-on-exec; the rank keeps only its own end.
    if (::fcntl(own_fd, F_SETFD, 0) != 0) _exit(kExitInternal);
    environ = envp;
    ::execvp(argv[0], argv);
    char message[512];
    int length = std::snprintf(message, sizeof message, "distbarrier-run: cannot execute '%s': %s\n", argv[0],
                               std::strerror(errno));
    if (length > 0) {
      ssize_t ignored =
          ::write(STDERR_FILENO, message, std::min<std::size_t>(static_cast<std::size_t>(length), sizeof message - 1));
      (void)ignored;
    }
    _exit(kExitCannotExecute);
  }

  void Loop() {
    while (running_ > 0) {
      std::vector<pollfd> fds;
      fds.push_back({signal_fd_, POLLIN, 0});
      Rank& root = ranks_[0];
      if (root.launcher_fd >= 0) fds.push_back({root.launcher_fd, POLLIN, 0});
      if (root_info_ready_) {
        for (std::size_t i = 1; i < ranks_.size(); ++i) {
          if (ranks_[i].launcher_fd >= 0) fds.push_back({ranks_[i].launcher_fd, POLLOUT, 0});
        }
      }

      int ready = ::poll(fds.data(), fds.size(), PollTimeoutMs());
      if (ready < 0 && errno != EINTR) {
        Say("poll: %s", std::strerror(errno));
        internal_error_ = true;
        // Without poll the loop cannot go on: kill the ranks and reap them with a blocking wait.
        SignalRunning(SIGKILL);
        while (running_ > 0 && ReapOne(0)) {
        }
        return;
      }
      for (const pollfd& entry : fds) {
        if (entry.revents == 0) continue;
        if (entry.fd == signal_fd_) {
          HandleSignals();
        } else if (entry.fd == root.launcher_fd) {
          ReadRootInfo();
        } else {
          for (std::size_t i = 1; i < ranks_.size(); ++i) {
            if (ranks_[i].launcher_fd == entry.fd) WriteRootInfo(ranks_[i]);
          }
        }
      }
      CheckDeadlines();
    }
  }

  int PollTimeoutMs() const {
    std::optional<Clock::time_point> next;
    if (job_deadline_ && !kill_deadline_) next = job_deadline_;
    if (kill_deadline_ && !killed_) next = next ? std::min(*next, *kill_deadline_) : *kill_deadline_;
    if (!next) return -1;
    auto left = *next - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
  }

  void CheckDeadlines() {
    auto now = Clock::now();
    if (job_deadline_ && !kill_deadline_ && now >= *job_deadline_ && running_ > 0) {
      timed_out_ = true;
      if (!exit_code_) exit_code_ = kExitTimeout;
      Say("the job ran longer than --timeout %s; stopping the %d running ranks", Seconds(options_.timeout_s).c_str(),
          running_);
      BeginStop();
    }
    if (kill_deadline_ && !killed_ && now >= *kill_deadline_ && running_ > 0) {
      killed_ = true;
      Say("%d ranks still running %s after SIGTERM; sending SIGKILL", running_, Seconds(options_.kill_grace_s).c_str());
      SignalRunning(SIGKILL);
    }
  }

  void HandleSignals() {
    signalfd_siginfo info;
    for (;;) {
      ssize_t n = ::read(signal_fd_, &info, sizeof info);
      if (n != static_cast<ssize_t>(sizeof info)) break;  // EAGAIN: drained
      if (info.ssi_signo == SIGCHLD) {
        while (running_ > 0 && ReapOne(WNOHANG)) {
        }
        continue;
      }
      // SIGINT or SIGTERM. One the terminal sent to the whole foreground process group (si_code
      // SI_KERNEL) has reached the ranks already; anything else, e.g. kill(launcher), is forwarded.
      int sig = static_cast<int>(info.ssi_signo);
      bool from_terminal = info.ssi_code == SI_KERNEL;
      const char* abbrev = ::sigabbrev_np(sig);
      Say("received SIG%s; %s the %d running ranks", abbrev ? abbrev : "?",
          from_terminal ? "it went to" : "forwarding it to", running_);
      if (!from_terminal) SignalRunning(sig);
      // The ranks are expected to end now; the ones that have not after --kill-grace are killed.
      if (!kill_deadline_) kill_deadline_ = Clock::now() + ToDuration(options_.kill_grace_s);
    }
    // SIGCHLD coalesces; reap anyway in case a notification was merged with one already read.
    while (running_ > 0 && ReapOne(WNOHANG)) {
    }
  }

  // Reaps one rank; false when none was ready (WNOHANG) or there is nothing left to wait for.
  bool ReapOne(int flags) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, flags);
    if (pid < 0 && errno == EINTR) return true;
    if (pid <= 0) return false;
    auto it = std::find_if(ranks_.begin(), ranks_.end(), [pid](const Rank& r) { return r.pid == pid; });
    if (it == ranks_.end()) return true;  // not one of ours (cannot happen, but keep reaping)
    Rank& rank = *it;
    rank.running = false;
    rank.status = status;
    --running_;
    // Nobody will read the root info of a rank that has gone. Rank 0's pipe stays open: what it
    // wrote before exiting is still in the pipe, and EOF comes on its own.
    if (rank.index != 0) CloseFd(rank.launcher_fd);
    if (!Failed(status)) return true;
    std::string what = Describe(status);
    if (!exit_code_) {
      exit_code_ = ExitCodeOf(status);
      first_failure_ = rank.index;
      bool others = running_ > 0;
      Say("rank %d (pid %d) %s%s", rank.index, static_cast<int>(pid), what.c_str(),
          others ? "; stopping the other ranks" : "");
      BeginStop();
    } else {
      Say("rank %d (pid %d) %s", rank.index, static_cast<int>(pid), what.c_str());
      BeginStop();
    }
    return true;
  }

  void BeginStop() {
    if (!term_sent_) {
      term_sent_ = true;
      SignalRunning(SIGTERM);
    }
    if (!kill_deadline_) kill_deadline_ = Clock::now() + ToDuration(options_.kill_grace_s);
  }

  void SignalRunning(int sig) {
    // An unreaped rank's pid cannot be reused, so this never hits a stranger.
    for (const Rank& rank : ranks_) {
      if (rank.running) ::kill(rank.pid, sig);
    }
  }

  void ReadRootInfo() {
    Rank& root = ranks_[0];
    for (;;) {
      ssize_t n = ::read(root.launcher_fd, root_info_.data() + root_info_size_, root_info_.size() - root_info_size_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n > 0) {
        root_info_size_ += static_cast<std::size_t>(n);
        if (root_info_size_ < root_info_.size()) continue;
        // Complete: hand it to every other rank.
        CloseFd(root.launcher_fd);
        root_info_ready_ = true;
        for (std::size_t i = 1; i < ranks_.size(); ++i) WriteRootInfo(ranks_[i]);
        return;
      }
      // EOF (or an error) before the whole root info: the other ranks get EOF as well.
      // Zero bytes is a program that does not use the relay; a part of the root info is a bug.
      if (ranks_.size() > 1 && root_info_size_ > 0) {
        Say("rank 0 closed its root-info pipe after %zu of %zu bytes; closing the other ranks' pipes", root_info_size_,
            kRootInfoBytes);
      }
      CloseFd(root.launcher_fd);
      for (std::size_t i = 1; i < ranks_.size(); ++i) CloseFd(ranks_[i].launcher_fd);
      return;
    }
  }

  void WriteRootInfo(Rank& rank) {
    while (rank.launcher_fd >= 0 && rank.sent < root_info_.size()) {
      ssize_t n = ::write(rank.launcher_fd, root_info_.data() + rank.sent, root_info_.size() - rank.sent);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;  // pipe full: poll says when to go on
      if (n <= 0) {                          // EPIPE: the rank closed its end or is gone
        CloseFd(rank.launcher_fd);
        return;
      }
      rank.sent += static_cast<std::size_t>(n);
    }
    CloseFd(rank.launcher_fd);  // all sent: the rank sees EOF after the root info
  }

  int Summarize() {
    const int n = options_.world_size;
    const char* ranks_word = n == 1 ? "rank" : "ranks";
    if (internal_error_) {
      Say("%d %s, launcher error; exit code %d", n, ranks_word, kExitInternal);
      return kExitInternal;
    }
    if (!exit_code_) {
      Say("%d %s, all exited 0", n, ranks_word);
      return 0;
    }
    int failed = 0;
    for (const Rank& rank : ranks_) failed += Failed(rank.status) ? 1 : 0;
    if (timed_out_) {
      Say("%d %s, timed out after %s; %d of %d did not exit 0; exit code %d", n, ranks_word,
          Seconds(options_.timeout_s).c_str(), failed, n, *exit_code_);
    } else {
      const Rank& first = ranks_[static_cast<std::size_t>(first_failure_)];
      Say("%d %s, rank %d failed first (%s); %d of %d did not exit 0; exit code %d", n, ranks_word, first.index,
          Describe(first.status).c_str(), failed, n, *exit_code_);
    }
    return *exit_code_;
  }

  const Options& options_;
  std::vector<Rank> ranks_;
  int running_ = 0;
  int signal_fd_ = -1;
  sigset_t old_mask_{};
  struct sigaction old_sigchld_ {};
  struct sigaction old_sigpipe_ {};

  std::vector<unsigned char> root_info_ = std::vector<unsigned char>(kRootInfoBytes);
  std::size_t root_info_size_ = 0;
  bool root_info_ready_ = false;

  Clock::time_point start_{};
  std::optional<Clock::time_point> job_deadline_;
  std::optional<Clock::time_point> kill_deadline_;
  bool term_sent_ = false;
  bool killed_ = false;
  bool timed_out_ = false;
  bool internal_error_ = false;
  std::optional<int> exit_code_;
  int first_failure_ = -1;
};

}  // namespace

int Launch(const Options& options) {
  Launcher launcher(options);
  return launcher.Run();
}

}  // namespace distbarrier::run
