#include "comm/diagnosis/flight_recorder.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "comm/diagnosis/status_protocol.h"
#include "comm/diagnosis/status_server.h"
#include "comm/group.h"
#include "common/env.h"
#include "common/json_sink.h"
#include "common/log.h"

namespace distbarrier::comm::diagnosis {
namespace {

constexpr int64_t kDefaultCapacity = 1024;
constexpr int64_t kMaxCapacity = 1 << 20;
constexpr size_t kSlots = 256;      // recorders a signal handler can reach
constexpr size_t kMaxRetired = 16;  // destroyed groups kept for later dumps
constexpr int kFatalSignals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};

int64_t SteadyNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);  // what std::chrono::steady_clock reads
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

int64_t RealtimeNs() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

const char* UnfinishedName(int32_t outcome) {
  switch (static_cast<Unfinished>(outcome)) {
    case Unfinished::kTimedOut: return "timed out";
    case Unfinished::kPeerDied: return "peer died";
    case Unfinished::kHangWarning: return "hang warning";
    case Unfinished::kAborted: return "aborted";
  }
  return "unknown";
}

// Every recorder of the process. The mutex guards `owned` (live groups' recorders, then the
// retired ones); `slots` mirror it for a signal handler, which cannot lock.
struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<FlightRecorder>> owned;
  std::atomic<FlightRecorder*> slots[kSlots] = {};
  int64_t capacity = kDefaultCapacity;
  bool path_from_environment = false;
  char path_template[1024] = {};
  char host[256] = {};
  char program[256] = {};
  struct sigaction previous[std::size(kFatalSignals)] = {};
};

std::atomic<Registry*> g_registry{nullptr};

void LockForFork() {
  g_registry.load()->mutex.lock();
}
void UnlockAfterFork() {
  g_registry.load()->mutex.unlock();
}

// "%p" -> pid; the result in `out` (async-signal-safe).
bool ExpandPath(const char* path_template, char* out, size_t capacity) {
  size_t used = 0;
  auto put = [&](char c) {
    if (used + 1 >= capacity) return false;
    out[used++] = c;
    return true;
  };
  for (const char* p = path_template; *p != '\0'; ++p) {
    if (p[0] == '%' && p[1] == 'p') {
      char digits[16];
      int count = 0;
      for (auto pid = static_cast<unsigned>(getpid()); pid != 0 || count == 0; pid /= 10)
        digits[count++] = static_cast<char>('0' + pid % 10);
      while (count > 0) {
        if (!put(digits[--count])) return false;
      }
      ++p;
    } else if (!put(*p)) {
      return false;
    }
  }
  out[used] = '\0';
  return true;
}

void WriteDocument(JsonSink& out, const Registry& registry, const char* reason,
                   std::span<FlightRecorder* const> recorders, bool barriers, bool lock) {
  const int32_t self = getpid();
  out.Raw("{").Key("format").String(kFlightRecorderFormat).Raw(",").Key("version").Int(1);
  out.Raw(",").Key("reason").String(reason).Raw(",").Key("pid").Int(self);
  out.Raw(",").Key("host").String(registry.host).Raw(",").Key("uid").UInt(getuid());
  out.Raw(",").Key("program").String(registry.program);
  out.Raw(",").Key("steady_ns").Int(SteadyNs()).Raw(",").Key("realtime_ns").Int(RealtimeNs());
  out.Raw(",").Key("groups").Raw("[");
  bool first = true;
  for (FlightRecorder* recorder : recorders) {
    if (recorder == nullptr || recorder->OwnerPid() != self) continue;  // a forked child's inheritance
    if (!first) out.Raw(",");
    first = false;
    recorder->Write(out, barriers, lock);
  }
  out.Raw("]}\n");
}

// Writes the document to the recorder file through a temporary file renamed into place.
// Async-signal-safe when `lock` is false. Returns false when it could not.
bool WriteFile(const Registry& registry, const char* reason, std::span<FlightRecorder* const> recorders, bool lock,
               char* path, size_t path_capacity) {
  if (!ExpandPath(registry.path_template, path, path_capacity)) return false;
  char temporary[1100];
  size_t used = 0;
  for (const char* p = path; *p != '\0' && used + 1 < sizeof(temporary); ++p) temporary[used++] = *p;
  const char suffix[] = ".tmp.";
  for (const char* p = suffix; *p != '\0' && used + 1 < sizeof(temporary); ++p) temporary[used++] = *p;
  char digits[16];
  int count = 0;
  for (auto tid = static_cast<unsigned long>(syscall(SYS_gettid)); tid != 0 || count == 0; tid /= 10) {
    digits[count++] = static_cast<char>('0' + tid % 10);
  }
  while (count > 0 && used + 1 < sizeof(temporary)) temporary[used++] = digits[--count];
  temporary[used] = '\0';

  const int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok;
  {
    JsonSink out(fd);
    WriteDocument(out, registry, reason, recorders, /*barriers=*/true, lock);
    out.Flush();
    ok = !out.Failed();
  }
  ok = close(fd) == 0 && ok;
  if (ok) ok = rename(temporary, path) == 0;
  if (!ok) unlink(temporary);
  return ok;
}

std::vector<std::shared_ptr<FlightRecorder>> Snapshot(Registry& registry) {
  std::lock_guard lock(registry.mutex);
  return registry.owned;
}

std::vector<FlightRecorder*> Pointers(const std::vector<std::shared_ptr<FlightRecorder>>& recorders) {
  std::vector<FlightRecorder*> pointers;
  for (const auto& recorder : recorders) pointers.push_back(recorder.get());
  return pointers;
}

std::atomic<bool> g_fatal_dump_started{false};

// The dump's reason for each of kFatalSignals, in the same order (static strings: signal-safe).
constexpr const char* kFatalReasons[] = {"abort (SIGABRT)", "fatal signal (SIGSEGV)", "fatal signal (SIGBUS)",
                                         "fatal signal (SIGILL)", "fatal signal (SIGFPE)"};
static_assert(std::size(kFatalReasons) == std::size(kFatalSignals));

void OnFatalSignal(int signal, siginfo_t* info, void* /*context*/) {
  Registry* registry = g_registry.load(std::memory_order_acquire);
  size_t index = 0;
  while (index < std::size(kFatalSignals) && kFatalSignals[index] != signal) ++index;
  if (registry != nullptr && !g_fatal_dump_started.exchange(true)) {
    FlightRecorder* recorders[kSlots];
    for (size_t i = 0; i < kSlots; ++i) recorders[i] = registry->slots[i].load(std::memory_order_acquire);
    char path[1024];
    const char* reason = index < std::size(kFatalReasons) ? kFatalReasons[index] : "fatal signal";
    if (WriteFile(*registry, reason, recorders, /*lock=*/false, path, sizeof(path))) {
      static constexpr char kWritten[] = "distbarrier: flight recorder written to ";
      (void)!write(STDERR_FILENO, kWritten, sizeof(kWritten) - 1);
      (void)!write(STDERR_FILENO, path, strlen(path));
      (void)!write(STDERR_FILENO, "\n", 1);
    }
  }
  // Whoever handled the signal before us (the default, or a sanitizer) takes it from here: a
  // fault recurs when the faulting instruction runs again; a signal that was sent (abort,
  // raise, kill: si_code <= 0) would not, so it is raised again and delivered on return.
  if (registry != nullptr && index < std::size(kFatalSignals)) {
    sigaction(signal, &registry->previous[index], nullptr);
  } else {
    std::signal(signal, SIG_DFL);
  }
  if (signal == SIGABRT || info == nullptr || info->si_code <= 0) raise(signal);
}

void OnExit() {
  if (g_fatal_dump_started.load()) return;
  DumpFlightRecorders("exit");
}

Registry& MakeRegistry() {
  auto* registry = new Registry;  // never destroyed: dumps run at exit and in signal handlers
  const int64_t capacity = EnvInt("DISTBARRIER_FLIGHT_RECORDER_SIZE", kDefaultCapacity);
  registry->capacity = std::clamp<int64_t>(capacity, 0, kMaxCapacity);
  const char* path = std::getenv("DISTBARRIER_FLIGHT_RECORDER");
  registry->path_from_environment = path != nullptr && *path != '\0';
  std::string chosen;
  if (registry->path_from_environment) {
    chosen = path;
  } else {
    const char* directory = std::getenv("TMPDIR");
    chosen =
        std::string(directory != nullptr && *directory != '\0' ? directory : "/tmp") + "/distbarrier-flight.%p.json";
  }
  std::strncpy(registry->path_template, chosen.c_str(), sizeof(registry->path_template) - 1);
  if (gethostname(registry->host, sizeof(registry->host) - 1) != 0) std::strcpy(registry->host, "unknown");
  const int comm = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (comm >= 0) {
    const ssize_t bytes = read(comm, registry->program, sizeof(registry->program) - 1);
    if (bytes > 0 && registry->program[bytes - 1] == '\n') registry->program[bytes - 1] = '\0';
    close(comm);
  }
  g_registry.store(registry, std::memory_order_release);
  pthread_atfork(LockForFork, UnlockAfterFork, UnlockAfterFork);
  if (registry->path_from_environment && registry->capacity > 0) {
    std::atexit(OnExit);
    for (size_t i = 0; i < std::size(kFatalSignals); ++i) {
      struct sigaction action {};
      action.sa_sigaction = OnFatalSignal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_ONSTACK | SA_SIGINFO;
      sigaction(kFatalSignals[i], &action, &registry->previous[i]);
    }
  }
  return *registry;
}

Registry& GetRegistry() {
  static Registry& registry = MakeRegistry();
  return registry;
}

void Register(const std::shared_ptr<FlightRecorder>& recorder) {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mutex);
  // A forked child's inherited recorders, and the oldest retired ones (only the registry holds
  // them), make room. They are freed last, once the signal handler's slots no longer show them.
  const int32_t self = getpid();
  std::vector<std::shared_ptr<FlightRecorder>> kept;
  std::vector<std::shared_ptr<FlightRecorder>> dropped;
  size_t retired = 0;
  for (auto it = registry.owned.rbegin(); it != registry.owned.rend(); ++it) {
    const bool inherited = (*it)->OwnerPid() != self;
    const bool old_retired = !inherited && it->use_count() == 1 && ++retired > kMaxRetired;
    (inherited || old_retired ? dropped : kept).push_back(std::move(*it));
  }
  std::reverse(kept.begin(), kept.end());
  registry.owned = std::move(kept);
  registry.owned.push_back(recorder);
  size_t slot = 0;
  for (const auto& owned : registry.owned) {
    if (slot == kSlots) break;
    registry.slots[slot++].store(owned.get(), std::memory_order_release);
  }
  for (; slot < kSlots; ++slot) registry.slots[slot].store(nullptr, std::memory_order_release);
  EnsureStatusServer();
}

}  // namespace

std::shared_ptr<FlightRecorder> FlightRecorder::Make(const Group& group) {
  auto recorder = std::make_shared<FlightRecorder>(group, static_cast<size_t>(GetRegistry().capacity));
  Register(recorder);
  return recorder;
}

FlightRecorder::FlightRecorder(const Group& group, size_t capacity)
    : group_(&group),
      name_(group.Name()),
      size_(group.Size()),
      threads_(group.AllLocal()),
      owner_pid_(getpid()),
      capacity_(capacity),
      entries_(capacity > 0 ? std::make_unique<Entry[]>(capacity) : nullptr),
      notes_(std::make_unique<Note[]>(static_cast<size_t>(group.Size()))) {}

FlightRecorder::~FlightRecorder() = default;

void FlightRecorder::NoteUnfinished(int rank, uint64_t seq, Unfinished outcome, int64_t arrival_ns, int64_t end_ns,
                                    std::span<const int> missing) {
  Note& note = notes_[rank];
  // The ring's seqlock (see RecordReleased), with an odd version while being written. Two
  // writers of one rank's note cannot overlap: a rank ends one barrier at a time.
  note.version.fetch_add(1, std::memory_order_relaxed);
  note.seq.store(seq, std::memory_order_release);
  note.outcome.store(static_cast<int32_t>(outcome), std::memory_order_release);
  note.arrival_ns.store(arrival_ns, std::memory_order_release);
  note.end_ns.store(end_ns, std::memory_order_release);
  const size_t listed = std::min<size_t>(missing.size(), kMissingListed);
  for (size_t i = 0; i < listed; ++i) note.missing[i].store(missing[i], std::memory_order_release);
  note.missing_count.store(static_cast<int32_t>(missing.size()), std::memory_order_release);
  note.version.fetch_add(1, std::memory_order_release);
}

FlightRecorder::RankView FlightRecorder::ReadRank(int rank) const {
  auto& group = const_cast<Group&>(*group_);  // read only: Window() has no const overload
  const BarrierWindow& window = group.Window();
  RankView view;
  view.pid = threads_ ? owner_pid_ : window.Pid(rank);
  view.device = group.DeviceOfRank(rank);
  view.arrived_seq = window.ArrivedSequence(rank);
  view.arrival_ns = view.arrived_seq == 0 ? 0 : window.ArrivalNs(rank, view.arrived_seq);
  view.passed_seq = view.device >= 0 ? group.LastPassed(rank) : 0;
  view.dead = window.Dead(rank) || window.Unreachable(rank);
  view.destroyed = window.Destroyed(rank);
  if (window.HostCount() > 1 && window.Host(rank) != window.LocalHost()) {
    // Its host's agent reports what it reached (heartbeats); the window holds it only once
    // a barrier completes here.
    view.other_host = window.Host(rank);
    const uint64_t reported = window.ReportedSequence(rank);
    if (reported > view.arrived_seq) {
      view.arrived_seq = reported;
      view.arrival_ns = 0;
    }
  }
  return view;
}

void FlightRecorder::Retire() {
  auto kept = std::make_unique<RankView[]>(static_cast<size_t>(size_));
  for (int rank = 0; rank < size_; ++rank) kept[rank] = ReadRank(rank);
  std::lock_guard lock(view_mutex_);
  retired_released_seq_.store(const_cast<Group*>(group_)->Window().ReleasedSequence(), std::memory_order_relaxed);
  retired_ranks_ = std::move(kept);
  retired_.store(true, std::memory_order_release);
  group_ = nullptr;
}

void FlightRecorder::Write(JsonSink& out, bool barriers, bool lock) const {
  std::unique_lock guard(view_mutex_, std::defer_lock);
  if (lock) guard.lock();
  const bool retired = retired_.load(std::memory_order_acquire);
  const uint64_t released = retired ? retired_released_seq_.load(std::memory_order_relaxed)
                                    : const_cast<Group*>(group_)->Window().ReleasedSequence();
  out.Raw("{").Key("name").String(name_).Raw(",").Key("size").Int(size_);
  out.Raw(",").Key("threads").Bool(threads_).Raw(",").Key("retired").Bool(retired);
  out.Raw(",").Key("released_seq").UInt(released).Raw(",").Key("ranks").Raw("[");
  WriteRanks(out, retired ? retired_ranks_.get() : nullptr);
  out.Raw("]");
  if (barriers) {
    out.Raw(",").Key("barriers").Raw("[");
    WriteBarriers(out);
    out.Raw("]");
  }
  out.Raw("}");
}

void FlightRecorder::WriteRanks(JsonSink& out, const RankView* retired) const {
  for (int rank = 0; rank < size_; ++rank) {
    const RankView view = retired != nullptr ? retired[rank] : ReadRank(rank);
    if (rank > 0) out.Raw(",");
    out.Raw("{").Key("rank").Int(rank).Raw(",").Key("pid").Int(view.pid);
    out.Raw(",").Key("local").Bool(view.device >= 0).Raw(",").Key("device").Int(view.device);
    out.Raw(",").Key("arrived_seq").UInt(view.arrived_seq).Raw(",").Key("arrival_ns").Int(view.arrival_ns);
    out.Raw(",").Key("passed_seq").UInt(view.passed_seq);
    out.Raw(",").Key("dead").Bool(view.dead).Raw(",").Key("destroyed").Bool(view.destroyed);
    if (view.other_host >= 0) out.Raw(",").Key("other_host").Int(view.other_host);
    const Note& note = notes_[rank];
    for (int attempt = 0; attempt < 4; ++attempt) {  // a note being written is retried a little
      const uint64_t version = note.version.load(std::memory_order_acquire);
      if (version == 0) break;
      if (version % 2 == 1) continue;
      const uint64_t seq = note.seq.load(std::memory_order_acquire);
      const int32_t outcome = note.outcome.load(std::memory_order_acquire);
      const int64_t arrival = note.arrival_ns.load(std::memory_order_acquire);
      const int64_t end = note.end_ns.load(std::memory_order_acquire);
      const int32_t count = note.missing_count.load(std::memory_order_acquire);
      int32_t missing[kMissingListed];
      const int listed = std::clamp<int32_t>(count, 0, kMissingListed);
      for (int i = 0; i < listed; ++i) missing[i] = note.missing[i].load(std::memory_order_acquire);
      if (note.version.load(std::memory_order_relaxed) != version) continue;
      out.Raw(",")
          .Key("unfinished")
          .Raw("{")
          .Key("seq")
          .UInt(seq)
          .Raw(",")
          .Key("outcome")
          .String(UnfinishedName(outcome));
      out.Raw(",").Key("arrival_ns").Int(arrival).Raw(",").Key("end_ns").Int(end);
      out.Raw(",").Key("missing_count").Int(count).Raw(",").Key("missing").Raw("[");
      for (int i = 0; i < listed; ++i) (i > 0 ? out.Raw(",") : out).Int(missing[i]);
      out.Raw("]}");
      break;
    }
    out.Raw("}");
  }
}

void FlightRecorder::WriteBarriers(JsonSink& out) const {
  if (capacity_ == 0) return;
  uint64_t newest = 0;
  for (size_t i = 0; i < capacity_; ++i) newest = std::max(newest, entries_[i].seq.load(std::memory_order_acquire));
  const uint64_t oldest = newest >= capacity_ ? newest - capacity_ + 1 : 1;
  bool first = true;
  for (uint64_t seq = oldest; newest != 0 && seq <= newest; ++seq) {
    const Entry& entry = entries_[seq % capacity_];
    if (entry.seq.load(std::memory_order_acquire) != seq) continue;
    const int64_t first_arrival = entry.first_arrival_ns.load(std::memory_order_acquire);
    const int64_t release = entry.release_ns.load(std::memory_order_acquire);
    const int32_t last_rank = entry.last_rank.load(std::memory_order_acquire);
    if (entry.seq.load(std::memory_order_relaxed) != seq) continue;  // overwritten meanwhile
    if (!first) out.Raw(",");
    first = false;
    out.Raw("{").Key("seq").UInt(seq).Raw(",").Key("first_arrival_ns").Int(first_arrival);
    out.Raw(",").Key("release_ns").Int(release).Raw(",").Key("last_rank").Int(last_rank).Raw("}");
  }
}

std::string DumpFlightRecorders(const char* reason) {
  Registry& registry = GetRegistry();
  const auto recorders = Snapshot(registry);
  const std::vector<FlightRecorder*> pointers = Pointers(recorders);
  char path[1024];
  if (!WriteFile(registry, reason, pointers, /*lock=*/true, path, sizeof(path))) {
    Log(LogLevel::kError, "flight recorder: cannot write {} ({}): {}", registry.path_template, reason,
        std::strerror(errno));
    return {};
  }
  Log(LogLevel::kWarning, "flight recorder ({}) written to {}", reason, path);
  return path;
}

void DumpFlightRecordersOnFailure(const char* reason) {
  if (GetRegistry().path_from_environment) DumpFlightRecorders(reason);
}

std::string StateDocument() {
  Registry& registry = GetRegistry();
  const auto recorders = Snapshot(registry);
  std::string text;
  {
    JsonSink out(&text);
    WriteDocument(out, registry, "state", Pointers(recorders), /*barriers=*/false, /*lock=*/true);
  }
  return text;
}

}  // namespace distbarrier::comm::diagnosis
