// distbarrier-run: starts this node's ranks of a program, relays rank 0's root info to the
// other ranks through pipes (and, across nodes, through node 0's launcher: node_relay.h),
// forwards SIGINT/SIGTERM, and stops every rank as soon as one of them fails.
//
// Everything happens in one single-threaded poll() loop: signals (SIGCHLD, SIGINT, SIGTERM) are
// blocked and read from a signalfd, the root-info pipes and sockets are non-blocking on the
// launcher's side, and the deadlines (--timeout, then --kill-grace, the relay's) are the poll
// timeout.
#include "launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "comm/bootstrap/rank_table.h"

extern char** environ;

namespace distbarrier::run {

void Say(const char* format, ...) {
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

namespace {

// The root-info variables are dropped from what the ranks inherit, whether set or not.
constexpr std::array<std::string_view, 2> kRootInfoFdVariables = {"DISTBARRIER_ROOT_INFO_OUT_FD",
                                                                  "DISTBARRIER_ROOT_INFO_IN_FD"};

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

enum class Role { kNone, kSendsRootInfo, kReceivesRootInfo };

struct Rank {
  int index = 0;  // on this node
  LocalRank plan;
  Role role = Role::kNone;
  pid_t pid = -1;
  bool running = false;
  int status = 0;
  int launcher_fd = -1;  // rank 0: read end of its pipe; receivers: write end of theirs
  int child_fd = -1;     // the end the rank inherits; closed in the launcher after the fork
  std::size_t sent = 0;  // root-info bytes written to this rank so far (ranks >= 1)
};

class Launcher {
 public:
  Launcher(const Options& options, const NodePlan& plan) : options_(options), plan_(plan) {}
  ~Launcher() {
    for (Rank& rank : ranks_) {
      CloseFd(rank.launcher_fd);
      CloseFd(rank.child_fd);
    }
    CloseFd(signal_fd_);
  }

  int Run() {
    if (plan_.relay == NodePlan::Relay::kServe) {
      // Listen before anything starts: a port in use is said at once, not after the ranks ran.
      auto listening =
          RootInfoServer::Listen(*plan_.master, {plan_.nnodes, static_cast<int>(plan_.ranks.size())}, *plan_.secret);
      if (auto* why = std::get_if<std::string>(&listening)) {
        Say("%s", why->c_str());
        return kExitInternal;
      }
      server_ = std::move(std::get<std::unique_ptr<RootInfoServer>>(listening));
    }
    if (!SetUpSignals() || !CreatePipes()) return kExitInternal;
    start_ = Clock::now();
    if (options_.timeout_s > 0) job_deadline_ = start_ + ToDuration(options_.timeout_s);
    if (plan_.relay == NodePlan::Relay::kFetch) {
      client_ = std::make_unique<RootInfoClient>(
          *plan_.master, JobShape{plan_.nnodes, static_cast<int>(plan_.ranks.size())}, plan_.node_rank, *plan_.secret,
          start_ + ToDuration(options_.connect_timeout_s));
    }
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
    ranks_.resize(plan_.ranks.size());
    for (std::size_t i = 0; i < ranks_.size(); ++i) {
      Rank& rank = ranks_[i];
      rank.index = static_cast<int>(i);
      rank.plan = plan_.ranks[i];
      if (plan_.relay == NodePlan::Relay::kNone) continue;
      rank.role = rank.plan.rank == 0 ? Role::kSendsRootInfo : Role::kReceivesRootInfo;
      if (rank.role == Role::kSendsRootInfo) root_ = &rank;
      int ends[2];
      if (::pipe2(ends, O_CLOEXEC) != 0) {
        Say("cannot create the root-info pipe for rank %zu: %s", i, std::strerror(errno));
        return false;
      }
      // Rank 0 writes, the launcher reads; for every other rank the launcher writes.
      int read_end = AboveStdio(ends[0]);
      int write_end = AboveStdio(ends[1]);
      const bool sends = rank.role == Role::kSendsRootInfo;
      rank.launcher_fd = sends ? read_end : write_end;
      rank.child_fd = sends ? write_end : read_end;
      if (rank.launcher_fd < 0 || rank.child_fd < 0 ||
          ::fcntl(rank.launcher_fd, F_SETFL, ::fcntl(rank.launcher_fd, F_GETFL) | O_NONBLOCK) != 0) {
        Say("cannot set up the root-info pipe for rank %zu: %s", i, std::strerror(errno));
        return false;
      }
    }
    return true;
  }

  // Every rank's own variables (its RANK and the like), in one place: their names are also
  // the inherited ones replaced.
  std::vector<std::pair<std::string, std::string>> RankVariables(const Rank& rank) const {
    const std::string global = std::to_string(rank.plan.rank);
    const std::string local = std::to_string(rank.plan.local_rank);
    const std::string world = std::to_string(plan_.world_size);
    const std::string local_world = std::to_string(plan_.ranks.size());
    const std::string node = std::to_string(plan_.node_rank);
    std::vector<std::pair<std::string, std::string>> env = {
        {"RANK", global},
        {"DISTBARRIER_RANK", global},
        {"LOCAL_RANK", local},
        {"DISTBARRIER_LOCAL_RANK", local},
        {"WORLD_SIZE", world},
        {"DISTBARRIER_WORLD_SIZE", world},
        {"LOCAL_WORLD_SIZE", local_world},
        {"DISTBARRIER_LOCAL_WORLD_SIZE", local_world},
        {"NODE_RANK", node},
        {"DISTBARRIER_NODE_RANK", node},
    };
    if (rank.plan.device_id >= 0) {
      // As CANN's rank-table scripts name them.
      env.push_back({"RANK_ID", global});
      env.push_back({"DEVICE_ID", std::to_string(rank.plan.device_id)});
      env.push_back({"DISTBARRIER_DEVICE_ID", std::to_string(rank.plan.device_id)});
    }
    if (rank.role != Role::kNone) {
      env.push_back({rank.role == Role::kSendsRootInfo ? "DISTBARRIER_ROOT_INFO_OUT_FD" : "DISTBARRIER_ROOT_INFO_IN_FD",
                     std::to_string(rank.child_fd)});
    }
    env.insert(env.end(), plan_.env.begin(), plan_.env.end());
    return env;
  }

  std::vector<std::string> BaseEnvironment() const {
    std::set<std::string, std::less<>> replaced(kRootInfoFdVariables.begin(), kRootInfoFdVariables.end());
    replaced.insert(plan_.drop_env.begin(), plan_.drop_env.end());
    if (!ranks_.empty()) {
      for (const auto& [name, value] : RankVariables(ranks_.front())) replaced.insert(name);
    }
    std::vector<std::string> env;
    for (char** entry = environ; entry && *entry; ++entry) {
      std::string_view text(*entry);
      std::string_view name = text.substr(0, text.find('='));
      if (replaced.find(name) == replaced.end()) env.emplace_back(text);
    }
    return env;
  }

  bool SpawnAll() {
    const std::vector<std::string> base = BaseEnvironment();
    std::vector<char*> argv;
    for (const std::string& arg : options_.command) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);

    for (Rank& rank : ranks_) {
      // Everything the child needs is built before fork(); the child only calls
      // async-signal-safe functions (plus snprintf/strerror on the exec error path).
      std::vector<std::string> env = base;
      for (const auto& [name, value] : RankVariables(rank)) env.push_back(name + "=" + value);
      std::vector<char*> envp;
      for (std::string& entry : env) envp.push_back(entry.data());
      envp.push_back(nullptr);

      pid_t pid = ::fork();
      if (pid < 0) {
        Say("cannot start rank %d: fork: %s", rank.plan.rank, std::strerror(errno));
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
    if (own_fd >= 0 && ::fcntl(own_fd, F_SETFD, 0) != 0) _exit(kExitInternal);
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

  // Node 0 goes on serving the root info after its ranks exited 0 (a program that sends it and
  // ends at once), until every node has it or the connect timeout passes.
  bool StillServing() {
    if (!server_ || server_->Done() || !root_info_ready_ || exit_code_ || internal_error_) return false;
    if (Clock::now() < start_ + ToDuration(options_.connect_timeout_s)) return true;
    Say("not every node asked for the root info within --connect-timeout %s",
        Seconds(options_.connect_timeout_s).c_str());
    server_.reset();
    return false;
  }

  void Loop() {
    while (running_ > 0 || StillServing()) {
      std::vector<pollfd> fds;
      fds.push_back({signal_fd_, POLLIN, 0});
      const int root_fd = root_ != nullptr ? root_->launcher_fd : -1;
      if (root_fd >= 0) fds.push_back({root_fd, POLLIN, 0});
      if (root_info_ready_) {
        for (const Rank& rank : ranks_) {
          if (rank.role == Role::kReceivesRootInfo && rank.launcher_fd >= 0) {
            fds.push_back({rank.launcher_fd, POLLOUT, 0});
          }
        }
      }
      const size_t relay_begin = fds.size();
      if (server_) server_->AddPollFds(fds);
      if (client_) client_->AddPollFds(fds);

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
      const std::vector<pollfd> relay_fds(fds.begin() + static_cast<std::ptrdiff_t>(relay_begin), fds.end());
      fds.resize(relay_begin);
      for (const pollfd& entry : fds) {
        if (entry.revents == 0) continue;
        if (entry.fd == signal_fd_) {
          HandleSignals();
        } else if (entry.fd == root_fd) {
          ReadRootInfo();
        } else {
          for (Rank& rank : ranks_) {
            if (rank.role == Role::kReceivesRootInfo && rank.launcher_fd == entry.fd) WriteRootInfo(rank);
          }
        }
      }
      if (server_) server_->OnPoll(relay_fds);
      if (client_) client_->OnPoll(relay_fds);
      CheckDeadlines();
    }
  }

  int PollTimeoutMs() const {
    std::optional<Clock::time_point> next;
    auto consider = [&next](std::optional<Clock::time_point> at) {
      if (at) next = next ? std::min(*next, *at) : *at;
    };
    if (job_deadline_ && !kill_deadline_) next = job_deadline_;
    if (kill_deadline_ && !killed_) consider(kill_deadline_);
    if (server_) consider(server_->NextDeadline());
    if (server_ && running_ == 0) consider(start_ + ToDuration(options_.connect_timeout_s));
    if (client_) consider(client_->NextDeadline());
    if (!next) return -1;
    auto left = *next - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
  }

  void CheckDeadlines() {
    auto now = Clock::now();
    if (server_) server_->CheckDeadlines(now);
    if (client_) {
      client_->CheckDeadlines(now);
      TakeFetchedRootInfo();
    }
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
    if (rank.role != Role::kSendsRootInfo) CloseFd(rank.launcher_fd);
    if (!Failed(status)) return true;
    std::string what = Describe(status);
    if (!exit_code_) {
      exit_code_ = ExitCodeOf(status);
      first_failure_ = rank.index;
      bool others = running_ > 0;
      Say("rank %d (pid %d) %s%s", rank.plan.rank, static_cast<int>(pid), what.c_str(),
          others ? "; stopping the other ranks" : "");
      BeginStop();
    } else {
      Say("rank %d (pid %d) %s", rank.plan.rank, static_cast<int>(pid), what.c_str());
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
    Rank& root = *root_;
    for (;;) {
      ssize_t n = ::read(root.launcher_fd, root_info_.data() + root_info_size_, root_info_.size() - root_info_size_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n > 0) {
        root_info_size_ += static_cast<std::size_t>(n);
        if (root_info_size_ < root_info_.size()) continue;
        // Complete: hand it to every other rank, and to the other nodes.
        CloseFd(root.launcher_fd);
        HandOutRootInfo();
        if (server_) server_->SetRootInfo(root_info_);
        return;
      }
      // EOF (or an error) before the whole root info: the other ranks get EOF as well.
      // Zero bytes is a program that does not use the relay; a part of the root info is a bug.
      if (plan_.world_size > 1 && root_info_size_ > 0) {
        Say("rank 0 closed its root-info pipe after %zu of %zu bytes; closing the other ranks' pipes", root_info_size_,
            kRootInfoBytes);
      }
      CloseFd(root.launcher_fd);
      for (Rank& rank : ranks_) {
        if (rank.role == Role::kReceivesRootInfo) CloseFd(rank.launcher_fd);
      }
      if (server_)
        server_->SetRootInfoMissing("rank 0 ended or closed its root-info pipe without sending the root info");
      return;
    }
  }

  void HandOutRootInfo() {
    root_info_ready_ = true;
    for (Rank& rank : ranks_) {
      if (rank.role == Role::kReceivesRootInfo) WriteRootInfo(rank);
    }
  }

  // Node k > 0: once node 0's launcher answered, the ranks get the root info, or EOF and the
  // job stops with the reason.
  void TakeFetchedRootInfo() {
    if (fetch_handled_ || client_->state() == RootInfoClient::State::kWorking) return;
    fetch_handled_ = true;
    if (client_->state() == RootInfoClient::State::kGot) {
      std::copy(client_->root_info().begin(), client_->root_info().end(), root_info_.begin());
      HandOutRootInfo();
      return;
    }
    Say("node %d: cannot get the root info: %s; stopping this node's ranks", plan_.node_rank, client_->error().c_str());
    for (Rank& rank : ranks_) CloseFd(rank.launcher_fd);
    internal_error_ = true;
    BeginStop();
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
    const int n = static_cast<int>(ranks_.size());
    const char* ranks_word = n == 1 ? "rank" : "ranks";
    const std::string node =
        plan_.nnodes > 1 ? "node " + std::to_string(plan_.node_rank) + " of " + std::to_string(plan_.nnodes) + ": "
                         : "";
    if (internal_error_) {
      Say("%s%d %s, launcher error; exit code %d", node.c_str(), n, ranks_word, kExitInternal);
      return kExitInternal;
    }
    if (!exit_code_) {
      Say("%s%d %s, all exited 0", node.c_str(), n, ranks_word);
      return 0;
    }
    int failed = 0;
    for (const Rank& rank : ranks_) failed += Failed(rank.status) ? 1 : 0;
    if (timed_out_) {
      Say("%s%d %s, timed out after %s; %d of %d did not exit 0; exit code %d", node.c_str(), n, ranks_word,
          Seconds(options_.timeout_s).c_str(), failed, n, *exit_code_);
    } else {
      const Rank& first = ranks_[static_cast<std::size_t>(first_failure_)];
      Say("%s%d %s, rank %d failed first (%s); %d of %d did not exit 0; exit code %d", node.c_str(), n, ranks_word,
          first.plan.rank, Describe(first.status).c_str(), failed, n, *exit_code_);
    }
    return *exit_code_;
  }

  const Options& options_;
  const NodePlan& plan_;
  std::vector<Rank> ranks_;
  Rank* root_ = nullptr;  // the rank that sends the root info, when it is on this node
  std::unique_ptr<RootInfoServer> server_;
  std::unique_ptr<RootInfoClient> client_;
  bool fetch_handled_ = false;
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

namespace {

constexpr int kMaxWorldSize = 1 << 20;
constexpr int kDefaultMasterPort = 29500;  // torchrun's

std::string SecretHelp() {
  return std::string("set ") + comm::kJobSecretEnv + " (64 hex digits, e.g. from `openssl rand -hex 32`) or " +
         comm::kJobSecretFileEnv + ", or give --secret-file, the same on every node";
}

// The job secret from --secret-file or the environment; `required` says why one is needed.
std::optional<std::string> ResolveSecret(const Options& options, const char* required, NodePlan& plan) {
  if (!options.secret_file.empty()) {
    auto read = comm::ReadJobSecretFile(options.secret_file);
    if (auto* why = std::get_if<std::string>(&read)) return "--secret-file: " + *why;
    plan.secret = std::get<comm::JobSecret>(read);
    // The ranks find it where the launcher did (a rank table job needs it too).
    char absolute[PATH_MAX];
    const char* path = ::realpath(options.secret_file.c_str(), absolute) ? absolute : options.secret_file.c_str();
    plan.env.push_back({comm::kJobSecretFileEnv, path});
    plan.drop_env.push_back(comm::kJobSecretEnv);
  } else {
    auto from_environment = comm::JobSecretFromEnvironment();
    if (auto* why = std::get_if<std::string>(&from_environment)) return *why;
    plan.secret = std::get<std::optional<comm::JobSecret>>(from_environment);
  }
  if (required != nullptr && !plan.secret) return std::string(required) + " needs a job secret: " + SecretHelp();
  return std::nullopt;
}

std::variant<NodePlan, std::string> PlanRankTable(const Options& options) {
  if (options.nnodes >= 0 || !options.master_addr.empty() || options.master_port >= 0) {
    return std::string(
        "--rank-table takes the nodes from the file: leave out --nnodes, --master-addr and "
        "--master-port");
  }
  auto read = comm::ReadRankTable(options.rank_table.c_str());
  if (auto* why = std::get_if<std::string>(&read)) return "--rank-table: " + *why;
  const comm::RankTable& table = std::get<comm::RankTable>(read);
  NodePlan plan;
  plan.relay = NodePlan::Relay::kNone;
  plan.nnodes = static_cast<int>(table.servers.size());
  if (options.node_rank < -1) return "--node-rank must be at least 0, got " + std::to_string(options.node_rank);
  if (options.node_rank < 0 && plan.nnodes > 1) {
    return "the rank table has " + std::to_string(plan.nnodes) +
           " servers: give --node-rank, the index in server_list of this node's server";
  }
  plan.node_rank = std::max(options.node_rank, 0);
  if (plan.node_rank >= plan.nnodes) {
    return "--node-rank " + std::to_string(plan.node_rank) + " is not a server of the rank table (it has " +
           std::to_string(plan.nnodes) + ")";
  }
  const comm::RankTableServer& server = table.servers[static_cast<size_t>(plan.node_rank)];
  if (options.nproc_per_node > 0 && static_cast<size_t>(options.nproc_per_node) != server.devices.size()) {
    return "-n " + std::to_string(options.nproc_per_node) + " but server \"" + server.server_id + "\" of the rank " +
           "table has " + std::to_string(server.devices.size()) + " devices";
  }
  plan.world_size = static_cast<int>(table.rank_count);
  uint32_t first = UINT32_MAX;
  for (const auto& device : server.devices) first = std::min(first, device.rank_id);
  for (const auto& device : server.devices) {
    plan.ranks.push_back(
        {static_cast<int>(device.rank_id), static_cast<int>(device.rank_id - first), device.device_id});
  }
  std::sort(plan.ranks.begin(), plan.ranks.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
  char absolute[PATH_MAX];
  const std::string path = ::realpath(options.rank_table.c_str(), absolute) ? absolute : options.rank_table;
  plan.env = {{"RANK_TABLE_FILE", path},
              {"DISTBARRIER_RANK_TABLE", path},
              {"RANK_SIZE", std::to_string(table.rank_count)},
              {"MASTER_ADDR", table.ServerOf(0).host_ip},
              {"DISTBARRIER_MASTER_ADDR", table.ServerOf(0).host_ip}};
  // The ranks need a secret (HcclCommInitClusterInfo); with several servers, several launchers
  // must share it, so the user gives it.
  if (auto why = ResolveSecret(options, table.servers.size() > 1 ? "a rank table of several servers" : nullptr, plan)) {
    return *why;
  }
  if (!plan.secret) {
    // One server, so this launcher starts every rank: it can make the secret they share
    // (HcclCommInitClusterInfo needs one; its ranks meet rank 0 over TCP).
    comm::JobSecret secret{};
    if (getrandom(secret.data(), secret.size(), 0) != static_cast<ssize_t>(secret.size())) {
      return std::string("cannot make a job secret: getrandom failed: ") + std::strerror(errno);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (uint8_t byte : secret) {
      hex += kHex[byte >> 4];
      hex += kHex[byte & 15];
    }
    plan.secret = secret;
    plan.env.push_back({comm::kJobSecretEnv, hex});
  }
  return plan;
}

}  // namespace

std::variant<NodePlan, std::string> PlanNode(const Options& options) {
  if (!std::isfinite(options.connect_timeout_s) || options.connect_timeout_s <= 0) {
    return std::string("--connect-timeout must be a number of seconds > 0");
  }
  if (!options.rank_table.empty()) return PlanRankTable(options);
  if (options.nproc_per_node < 1) {
    return options.nproc_per_node == 0 ? std::string("-n (--nproc-per-node) is required without --rank-table")
                                       : "-n must be at least 1, got " + std::to_string(options.nproc_per_node);
  }
  NodePlan plan;
  plan.nnodes = options.nnodes < 0 ? 1 : options.nnodes;
  if (plan.nnodes < 1) return "--nnodes must be at least 1, got " + std::to_string(options.nnodes);
  if (options.node_rank < -1) return "--node-rank must be at least 0, got " + std::to_string(options.node_rank);
  plan.node_rank = std::max(options.node_rank, 0);
  if (plan.node_rank >= plan.nnodes) {
    return "--node-rank " + std::to_string(plan.node_rank) + " is outside 0.." + std::to_string(plan.nnodes - 1);
  }
  if (static_cast<int64_t>(plan.nnodes) * options.nproc_per_node > kMaxWorldSize) {
    return "--nnodes x --nproc-per-node is more than " + std::to_string(kMaxWorldSize) + " ranks";
  }
  const int port = options.master_port < 0 ? kDefaultMasterPort : options.master_port;
  // Node 0's launcher takes the port; the ranks get the next one for a store of their own.
  if (port < 1 || port > 65534) return "--master-port must be in 1..65534, got " + std::to_string(port);
  const std::string master = options.master_addr.empty() ? "127.0.0.1" : options.master_addr;
  plan.world_size = plan.nnodes * options.nproc_per_node;
  for (int local = 0; local < options.nproc_per_node; ++local) {
    plan.ranks.push_back({plan.node_rank * options.nproc_per_node + local, local, -1});
  }
  plan.env = {{"DISTBARRIER_NNODES", std::to_string(plan.nnodes)}};
  // MASTER_ADDR / MASTER_PORT as torch.distributed's env:// expects them: where rank 0 may host
  // a store. On one node they are the user's own unless given here.
  if (plan.nnodes > 1 || !options.master_addr.empty() || options.master_port >= 0) {
    const std::string rank_port = std::to_string(port + 1);
    plan.env.insert(plan.env.end(), {{"MASTER_ADDR", master},
                                     {"DISTBARRIER_MASTER_ADDR", master},
                                     {"MASTER_PORT", rank_port},
                                     {"DISTBARRIER_MASTER_PORT", rank_port}});
  }
  if (plan.nnodes == 1) {
    plan.relay = NodePlan::Relay::kLocal;
    if (!options.secret_file.empty()) {
      if (auto why = ResolveSecret(options, nullptr, plan)) return *why;
    }
    return plan;
  }
  plan.relay = plan.node_rank == 0 ? NodePlan::Relay::kServe : NodePlan::Relay::kFetch;
  if (auto why = ResolveSecret(options, "a job of several nodes (--nnodes)", plan)) return *why;
  auto resolved = ResolveNode(master, port);
  if (auto* why = std::get_if<std::string>(&resolved)) return "--master-addr: " + *why;
  plan.master = std::get<NodeAddress>(resolved);
  return plan;
}

int Launch(const Options& options, const NodePlan& plan) {
  Launcher launcher(options, plan);
  return launcher.Run();
}

}  // namespace distbarrier::run
