#include "comm/hosts/host_agent.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "comm/group.h"
#include "comm/hosts/ucx_api.h"
#include "comm/transport/shm_transport.h"
#include "common/env.h"
#include "common/log.h"

namespace distbarrier::comm {
namespace {

using std::chrono::milliseconds;

constexpr uint16_t kActiveMessageId = 17;
constexpr uint32_t kDirectRound = 0xffffffffu;  // a message straight to every live host
constexpr int kClockSamples = 8;
constexpr auto kFlushLimit = std::chrono::seconds(1);  // at stop: what was sent gets this long to leave
// After a waiter's last help, the agent's thread leaves the work to waiters this long: a program
// that runs barriers back to back helps again well within it, and what comes over UCX meanwhile
// (a heartbeat, another host's next barrier) waits at most this long. A local wake-up while
// nobody helps ends it early (SleepWhileHelped).
constexpr std::chrono::nanoseconds kHelpedGrace = std::chrono::milliseconds(1);

enum class Kind : uint32_t { kBarrier = 1, kHeartbeat = 2, kPing = 3, kPong = 4, kGoodbye = 5, kTransport = 6 };

// Every message: this header, then its body. Host byte order (hosts of one job share it).
struct MessageHeader {
  uint32_t kind;
  uint32_t from;   // sender's host
  uint64_t seq;    // barrier (kBarrier), sample number (kPing/kPong)
  uint32_t round;  // dissemination round, or kDirectRound
  uint32_t count;  // entries after the fixed part
};
// kBarrier: required bitmap (words), then `count` of these.
struct ArrivalEntry {
  int32_t rank;
  int32_t unused;
  int64_t ns;  // on host 0's steady clock
};
// kHeartbeat: `count` of these, then uint32 dead-host count and the dead hosts.
struct RankReport {
  int32_t rank;
  uint32_t dead;
  uint64_t arrived_seq;
};

// kTransport: `seq` numbers the sender's transport messages to this host (1, 2, ...: applied
// in that order), `round` says which record follows, then its bytes.
enum class Record : uint32_t { kPost = 1, kFinish = 2, kChunk = 3, kTaken = 4, kBroken = 5 };
struct PostRecord {  // then `bytes` bytes of the rank's slot
  int32_t rank;
  int32_t unused;
  uint64_t seq;
  uint64_t bytes;
};
struct FinishRecord {
  int32_t rank;
  int32_t unused;
  uint64_t seq;
};
struct ChunkRecord {  // then `bytes` bytes of the sender's slot at `offset`
  int32_t from, to;
  uint64_t posted, offset, bytes, message, message_bytes;
};
struct TakenRecord {
  int32_t from, to;
  uint64_t taken, rejected, rejected_expected;
};
// kBroken: the reason's characters.

int64_t NowNs() {
  return Clock::now().time_since_epoch().count();
}

// Loaded by HostAgent::Create before any agent exists (it fails when UCX is missing).
const UcxApi& Ucx() {
  std::string unused;
  return *LoadUcx(&unused);
}

template <typename T>
void Append(std::vector<uint8_t>& out, const T& value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

// Reads a T at *offset, advancing it; false past the end.
template <typename T>
bool Take(const std::vector<uint8_t>& in, size_t* offset, T* value) {
  if (in.size() < *offset + sizeof(T)) return false;
  std::memcpy(value, in.data() + *offset, sizeof(T));
  *offset += sizeof(T);
  return true;
}

struct Message {
  MessageHeader header;
  std::vector<uint8_t> body;  // all bytes, header included
};

}  // namespace

class HostAgent::Impl {
 public:
  Impl(const HostLayout& layout, void* memory, int rank_count)
      : layout_(layout),
        me_(layout.my_host),
        hosts_(layout.host_count),
        rank_count_(rank_count),
        words_((static_cast<size_t>(rank_count) + 63) / 64),
        window_(rank_count, memory, /*initialize=*/false),
        local_ranks_(layout.RanksOn(layout.my_host)),
        state_(static_cast<size_t>(layout.host_count)),
        heartbeat_(milliseconds(std::max<int64_t>(10, EnvInt("DISTBARRIER_HEARTBEAT_MS", 250)))),
        host_timeout_(milliseconds(std::max<int64_t>(100, EnvInt("DISTBARRIER_HOST_TIMEOUT_MS", 1500)))),
        spin_(std::chrono::microseconds(std::clamp<int64_t>(EnvInt("DISTBARRIER_AGENT_SPIN_US", 200), 0, 10000))),
        transport_(rank_count, static_cast<std::byte*>(memory) + GroupDataRegionOffset(rank_count),
                   transport::ShmTransport::SlotBytesFromEnvironment(), nullptr),
        shipped_progress_(static_cast<size_t>(rank_count)),
        shipped_boxes_(static_cast<size_t>(rank_count) * static_cast<size_t>(rank_count)),
        out_seq_(static_cast<size_t>(layout.host_count), 0),
        in_next_(static_cast<size_t>(layout.host_count), 1),
        in_waiting_(static_cast<size_t>(layout.host_count)) {
    while ((1 << rounds_) < hosts_) ++rounds_;
  }

  ~Impl() {
    if (thread_.joinable()) {
      stop_.store(true, std::memory_order_seq_cst);
      Wake();
      thread_.join();
    }
    if (bridge_.joinable()) {
      stop_.store(true, std::memory_order_seq_cst);
      window_.WakeArrivalWaiters();
      bridge_.join();
    }
    if (worker_ != nullptr) Ucx().ucp_worker_destroy(worker_);
    if (context_ != nullptr) Ucx().ucp_cleanup(context_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  bool Init(std::string* error) {
    ucp_config_t* config = nullptr;
    ucs_status_t status = Ucx().ucp_config_read(nullptr, nullptr, &config);
    if (status != UCS_OK) return Fail(error, "ucp_config_read", status);
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
    status = Ucx().ucp_init_version(UCP_API_MAJOR, UCP_API_MINOR, &params, config, &context_);
    Ucx().ucp_config_release(config);
    if (status != UCS_OK) return Fail(error, "ucp_init", status);
    ucp_worker_params_t worker_params{};
    worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    worker_params.thread_mode = UCS_THREAD_MODE_SERIALIZED;  // the agent's thread or a helper, under work_mutex_
    status = Ucx().ucp_worker_create(context_, &worker_params, &worker_);
    if (status != UCS_OK) return Fail(error, "ucp_worker_create", status);
    ucp_address_t* address = nullptr;
    size_t length = 0;
    status = Ucx().ucp_worker_get_address(worker_, &address, &length);
    if (status != UCS_OK) return Fail(error, "ucp_worker_get_address", status);
    address_.assign(reinterpret_cast<uint8_t*>(address), reinterpret_cast<uint8_t*>(address) + length);
    Ucx().ucp_worker_release_address(worker_, address);
    ucp_am_handler_param_t handler{};
    handler.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
    handler.id = kActiveMessageId;
    handler.cb = &Impl::OnMessage;
    handler.arg = this;
    status = Ucx().ucp_worker_set_am_recv_handler(worker_, &handler);
    if (status != UCS_OK) return Fail(error, "ucp_worker_set_am_recv_handler", status);
    status = Ucx().ucp_worker_get_efd(worker_, &worker_fd_);
    if (status != UCS_OK) return Fail(error, "ucp_worker_get_efd", status);
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      *error = fmt::format("host agent: eventfd failed: {}", std::strerror(errno));
      return false;
    }
    return true;
  }

  const std::vector<uint8_t>& Address() const { return address_; }

  void OnRelease(HostAgent::ReleaseCallback callback) { on_release_ = std::move(callback); }

  std::optional<std::string> Start(const std::vector<std::vector<uint8_t>>& addresses) {
    if (static_cast<int>(addresses.size()) != hosts_) {
      return fmt::format("host agent: {} worker addresses for {} hosts", addresses.size(), hosts_);
    }
    endpoint_args_.resize(static_cast<size_t>(hosts_));
    const Clock::time_point now = Clock::now();
    for (int host = 0; host < hosts_; ++host) {
      state_[host].last_heard = now;
      if (host == me_) continue;
      if (addresses[host].empty()) return fmt::format("host agent: host {} sent no worker address", host);
      endpoint_args_[host] = EndpointArg{this, host};
      ucp_ep_params_t params{};
      params.field_mask =
          UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
      params.address = reinterpret_cast<const ucp_address_t*>(addresses[host].data());
      params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
      params.err_handler.cb = &Impl::OnEndpointError;
      params.err_handler.arg = &endpoint_args_[host];
      const ucs_status_t status = Ucx().ucp_ep_create(worker_, &params, &state_[host].endpoint);
      if (status != UCS_OK) {
        return fmt::format("host agent: cannot reach host {} ({}): ucp_ep_create: {}", host, HostName(host),
                           Ucx().ucs_status_string(status));
      }
    }
    if (me_ == 0) window_.SetClockOffset(0, 0);
    next_heartbeat_ = next_ping_ = Clock::now();
    try {
      bridge_ = std::thread([this] { Bridge(); });
      thread_ = std::thread([this] { Run(); });
    } catch (const std::system_error& failure) {
      return fmt::format("host agent: no thread: {}", failure.what());
    }
    started_.store(true, std::memory_order_release);
    return std::nullopt;
  }

  // --- waiters that help (WaitHelper) ---

  void BeginHelping() {
    helpers_.fetch_add(1, std::memory_order_seq_cst);
    Promise(NowNs());
  }

  // A waiter's turn of the agent's work.
  bool Help() {
    if (!started_.load(std::memory_order_acquire)) return false;
    const int64_t now = NowNs();
    helped_until_ns_.store(now + kHelpedGrace.count(), std::memory_order_seq_cst);
    if (promised_until_ns_.load(std::memory_order_relaxed) - now < kPromise.count() / 2) Promise(now);
    std::unique_lock lock(work_mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    return Iterate(/*drain=*/false);
  }

  // The last helper out ends the promise; what arrived since the last turn (another process's
  // rank, a collective's post) is the thread's to see, so it is woken for it.
  void EndHelping() {
    if (helpers_.fetch_sub(1, std::memory_order_seq_cst) != 1) return;
    EndPromise();
    if (window_.ArrivalWord() != word_seen_.load(std::memory_order_seq_cst)) Wake();
  }

  // A waiter stopped helping before its release (to sleep, or on a timeout): the thread takes
  // the work back now rather than after the grace.
  void StopHelping() {
    helped_until_ns_.store(0, std::memory_order_seq_cst);
    Wake();
  }

 private:
  // While helpers work, local arrivals and collectives' changes skip their wake-up (the
  // helpers see them; BarrierWindow::AgentPollsUntil). Refreshed at half time, not on every
  // turn: it is a shared line other processes' arrivals read. A helper preempted for longer
  // lets them wake the thread again.
  static constexpr std::chrono::nanoseconds kPromise = std::chrono::milliseconds(1);
  void Promise(int64_t now) {
    const int64_t until = now + kPromise.count();
    promised_until_ns_.store(until, std::memory_order_relaxed);
    window_.AgentPollsUntil(until);
  }
  // Arrivals wake the thread again; whoever reads the window after this sees every arrival that
  // skipped its wake-up (the seq_cst pairing of WakeArrival).
  void EndPromise() {
    if (promised_until_ns_.exchange(0, std::memory_order_seq_cst) == 0) return;
    window_.AgentStopsPolling();
  }

  struct EndpointArg {
    Impl* self = nullptr;
    int host = 0;
  };
  struct HostState {
    ucp_ep_h endpoint = nullptr;
    Clock::time_point last_heard;
    bool dead = false;
    bool left = false;  // said goodbye: its ranks' communicators are destroyed
  };
  // What ShipTransport sent last, per local rank and per mailbox.
  struct Shipped {
    uint64_t posted_seq = 0;
    uint64_t finished_seq = 0;
  };
  struct BoxShipped {
    uint64_t posted = 0;
    uint64_t taken = 0;
    uint64_t rejected = 0;
  };
  BoxShipped& Box(int from, int to) {
    return shipped_boxes_[static_cast<size_t>(from) * static_cast<size_t>(rank_count_) + static_cast<size_t>(to)];
  }
  struct PendingSend {
    void* request;
    std::unique_ptr<std::vector<uint8_t>> bytes;  // must live until the send completes
  };
  // The barrier this agent works on.
  struct Current {
    uint64_t seq = 1;
    bool started = false;
    std::vector<int> required;
    std::vector<uint64_t> required_bits;
    std::map<int, int64_t> known;  // rank -> arrival on host 0's clock
    uint32_t round = 0;
    bool round_sent = false;
    bool direct_sent = false;
    std::set<int> answered;  // hosts whose direct message for seq came
  };

  static bool Fail(std::string* error, const char* what, ucs_status_t status) {
    *error = fmt::format("host agent: {} failed: {}", what, Ucx().ucs_status_string(status));
    return false;
  }

  std::string HostName(int host) const {
    return host < static_cast<int>(layout_.host_names.size()) ? layout_.host_names[host] : "?";
  }

  void Wake() {
    const uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) != sizeof(one)) {
      // The eventfd is full only if nobody reads it; the loop's poll timeout still runs.
    }
  }

  // Turns futex wake-ups of local arrivals (from any process of this host) into the eventfd
  // the agent's poll sees.
  void Bridge() {
    uint32_t seen = window_.ArrivalWord();
    while (!stop_.load(std::memory_order_seq_cst)) {
      window_.WaitArrival(seen, milliseconds(200));
      const uint32_t now = window_.ArrivalWord();
      if (now != seen) {
        seen = now;
        Wake();
      }
    }
  }

  // --- UCX callbacks (on the agent's thread, inside ucp_worker_progress) ---

  static ucs_status_t OnMessage(void* arg, const void* /*header*/, size_t /*header_length*/, void* data, size_t length,
                                const ucp_am_recv_param_t* param) {
    auto* self = static_cast<Impl*>(arg);
    if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0 || length < sizeof(MessageHeader)) return UCS_OK;
    Message message;
    std::memcpy(&message.header, data, sizeof(MessageHeader));
    if (message.header.from >= static_cast<uint32_t>(self->hosts_)) return UCS_OK;
    message.body.assign(static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + length);
    self->inbox_.push_back(std::move(message));
    return UCS_OK;
  }

  static void OnEndpointError(void* arg, ucp_ep_h /*endpoint*/, ucs_status_t status) {
    auto* endpoint = static_cast<EndpointArg*>(arg);
    endpoint->self->failures_.emplace_back(endpoint->host,
                                           fmt::format("its connection failed: {}", Ucx().ucs_status_string(status)));
  }

  // --- sending ---

  std::vector<uint8_t> Begin(Kind kind, uint64_t seq, uint32_t round, uint32_t count) const {
    std::vector<uint8_t> bytes;
    Append(bytes, MessageHeader{static_cast<uint32_t>(kind), static_cast<uint32_t>(me_), seq, round, count});
    return bytes;
  }

  void Send(int host, std::vector<uint8_t> bytes) {
    HostState& target = state_[host];
    if (host == me_ || target.dead || target.left || target.endpoint == nullptr) return;
    auto owned = std::make_unique<std::vector<uint8_t>>(std::move(bytes));
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = UCP_AM_SEND_FLAG_EAGER;
    ucs_status_ptr_t request =
        Ucx().ucp_am_send_nbx(target.endpoint, kActiveMessageId, nullptr, 0, owned->data(), owned->size(), &param);
    if (request == nullptr) return;  // sent already
    if (UCS_PTR_IS_ERR(request)) {
      failures_.emplace_back(host, fmt::format("a send failed: {}", Ucx().ucs_status_string(UCS_PTR_STATUS(request))));
      return;
    }
    sends_.push_back(PendingSend{request, std::move(owned)});
  }

  void ReapSends() {
    std::erase_if(sends_, [](PendingSend& send) {
      if (Ucx().ucp_request_check_status(send.request) == UCS_INPROGRESS) return false;
      Ucx().ucp_request_free(send.request);
      return true;
    });
  }

  // --- the loop ---

  // One turn of the agent's work, on its thread or a helper's, work_mutex_ held. True when
  // anything moved. The thread drains UCX before it sleeps; a helper, which turns again at once,
  // makes one progress call per turn (each is a system call, a microsecond or more in a VM), and
  // first sends what its own arrival lets this host send.
  bool Iterate(bool drain) {
    word_seen_.store(window_.ArrivalWord(), std::memory_order_seq_cst);
    const uint64_t seq = cur_.seq;
    const bool started = cur_.started;
    const uint32_t round = cur_.round;
    if (!drain) Advance();
    bool moved = false;
    while (Ucx().ucp_worker_progress(worker_) != 0) {
      moved = true;
      if (!drain) break;
    }
    moved = moved || !inbox_.empty() || !failures_.empty();
    HandleInbox();
    // Barriers before deaths: a message that came before a connection broke is used first.
    Advance();
    ApplyFailures();
    Advance();
    ShipTransport();
    const Clock::time_point now = Clock::now();
    if (now >= next_heartbeat_) {
      SendHeartbeats();
      CheckSilence(now);
      ApplyFailures();
      next_heartbeat_ = now + heartbeat_;
    }
    if (me_ != 0 && samples_ < kClockSamples && !state_[0].dead && now >= next_ping_) {
      SendPing();
      next_ping_ = now + milliseconds(200);  // a lost answer is replaced by a new question
    }
    ReapSends();
    return moved || cur_.seq != seq || cur_.started != started || cur_.round != round;
  }

  void Run() {
    while (!stop_.load(std::memory_order_seq_cst)) {
      if (SleepWhileHelped()) continue;
      std::unique_lock lock(work_mutex_);
      Iterate(/*drain=*/true);
      if (Ucx().ucp_worker_progress(worker_) != 0) continue;
      if (SpinAWhile()) continue;
      if (Helped()) continue;
      const ucs_status_t armed = Ucx().ucp_worker_arm(worker_);
      if (armed == UCS_ERR_BUSY) continue;
      Clock::time_point wake = next_heartbeat_;
      if (me_ != 0 && samples_ < kClockSamples) wake = std::min(wake, next_ping_);
      int timeout_ms =
          static_cast<int>(std::chrono::ceil<milliseconds>(std::max(wake - Clock::now(), Clock::duration{})).count());
      if (!sends_.empty()) timeout_ms = std::min(timeout_ms, 1);
      lock.unlock();
      pollfd fds[2] = {{worker_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      const int ready = poll(fds, 2, timeout_ms);
      if (ready > 0 && fds[1].revents != 0) DrainWake();
    }
    std::lock_guard lock(work_mutex_);
    Leave();
  }

  bool Helped() const { return helped_until_ns_.load(std::memory_order_seq_cst) > NowNs(); }

  // While waiters help, and for kHelpedGrace after, the thread sleeps on its eventfd alone:
  // UCX's fd would wake it for every message a helper takes. A wake-up while no waiter helps
  // (an arrival of another process, a collective's post, a helper that gave up, stop) ends the
  // grace: the thread works as usual, UCX's messages included (a collective after a barrier
  // does not wait for the grace to run out). True when it slept.
  bool SleepWhileHelped() {
    const int64_t until = helped_until_ns_.load(std::memory_order_seq_cst);
    const int64_t left = until - NowNs();
    if (left <= 0) return false;
    const timespec timeout{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    pollfd fd{wake_fd_, POLLIN, 0};
    if (ppoll(&fd, 1, &timeout, nullptr) > 0) {
      DrainWake();
      if (helpers_.load(std::memory_order_seq_cst) == 0) helped_until_ns_.store(0, std::memory_order_seq_cst);
    }
    return true;
  }

  void DrainWake() {
    uint64_t count = 0;
    if (read(wake_fd_, &count, sizeof(count)) < 0) {
      // EAGAIN: another wake-up drained it; nothing to do.
    }
  }

  // While a barrier is under way here (or one just ended and the next is likely to come), look
  // for its next step for up to spin_ before sleeping: a sleep and wake-up costs more than a
  // round trip. Yields, so a rank sharing the core still runs. True when something came.
  // Meanwhile local arrivals skip their futex wake-up (and so the bridge thread's wake-up and
  // its eventfd write, two more context switches on the barrier's path): we see the word move.
  bool SpinAWhile() {
    if (spin_.count() == 0) return false;
    const bool busy = cur_.started || Clock::now() - last_completed_ < spin_;
    if (!busy) return false;
    const Clock::time_point until = Clock::now() + spin_;
    const uint32_t arrivals = window_.ArrivalWord();
    window_.AgentPollsUntil(std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count());
    bool came = false;
    while (!came && Clock::now() < until && !stop_.load(std::memory_order_relaxed) && !Helped()) {
      came = Ucx().ucp_worker_progress(worker_) != 0 || !inbox_.empty() || window_.ArrivalWord() != arrivals;
      if (!came) sched_yield();
    }
    window_.AgentStopsPolling();
    promised_until_ns_.store(0, std::memory_order_seq_cst);  // a helper's promise went with ours
    // An arrival that read our polling time before we stopped skipped its wake-up: its bump of
    // the word is visible now (barrier_window.cc, WakeArrival).
    return came || window_.ArrivalWord() != arrivals;
  }

  // At stop: tell the others this host leaves (so its silence is not a death), let what was
  // sent leave within kFlushLimit, close the endpoints.
  void Leave() {
    ShipTransport();  // a last finish of a rank that is gone now still reaches its peers
    for (int host = 0; host < hosts_; ++host) Send(host, Begin(Kind::kGoodbye, cur_.seq, 0, 0));
    const Clock::time_point limit = Clock::now() + kFlushLimit;
    while (!sends_.empty() && Clock::now() < limit) {
      Ucx().ucp_worker_progress(worker_);
      ReapSends();
    }
    std::vector<void*> closing;
    for (int host = 0; host < hosts_; ++host) {
      HostState& target = state_[host];
      if (target.endpoint == nullptr) continue;
      ucp_request_param_t param{};
      param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      param.flags = target.dead ? UCP_EP_CLOSE_FLAG_FORCE : 0;
      ucs_status_ptr_t request = Ucx().ucp_ep_close_nbx(target.endpoint, &param);
      target.endpoint = nullptr;
      if (request != nullptr && !UCS_PTR_IS_ERR(request)) closing.push_back(request);
    }
    while (Clock::now() < limit + kFlushLimit) {
      Ucx().ucp_worker_progress(worker_);
      std::erase_if(closing, [](void* request) {
        if (Ucx().ucp_request_check_status(request) == UCS_INPROGRESS) return false;
        Ucx().ucp_request_free(request);
        return true;
      });
      ReapSends();
      if (closing.empty() && sends_.empty()) break;
    }
    for (void* request : closing) Ucx().ucp_request_free(request);  // given up: UCX releases them with the worker
    for (PendingSend& send : sends_) Ucx().ucp_request_free(send.request);
    sends_.clear();
  }

  // --- incoming ---

  void HandleInbox() {
    while (!inbox_.empty()) {
      Message message = std::move(inbox_.front());
      inbox_.pop_front();
      const int from = static_cast<int>(message.header.from);
      HostState& sender = state_[from];
      if (sender.dead) continue;  // declared dead: its word no longer counts
      sender.last_heard = Clock::now();
      switch (static_cast<Kind>(message.header.kind)) {
        case Kind::kBarrier:
          if (message.header.seq >= cur_.seq) {
            buffered_.emplace(std::tuple(message.header.seq, message.header.round, from), std::move(message));
          } else if (message.header.round == kDirectRound) {
            OnLateAsk(message.header.seq);
          }
          break;
        case Kind::kHeartbeat: OnHeartbeat(from, message); break;
        case Kind::kPing: OnPing(from, message); break;
        case Kind::kPong: OnPong(message); break;
        case Kind::kTransport: OnTransport(from, std::move(message)); break;
        case Kind::kGoodbye:
          if (!sender.left) {
            sender.left = true;
            Log(LogLevel::kInfo, "group across hosts: host {} ({}) left (its ranks destroyed their communicators)",
                from, HostName(from));
            for (int rank : layout_.RanksOn(from)) window_.MarkDestroyed(rank);
          }
          break;
      }
    }
  }

  void OnHeartbeat(int from, const Message& message) {
    size_t offset = sizeof(MessageHeader);
    for (uint32_t i = 0; i < message.header.count; ++i) {
      RankReport report{};
      if (!Take(message.body, &offset, &report)) return;
      if (report.rank < 0 || report.rank >= rank_count_ || layout_.host_of_rank[report.rank] != from) continue;
      window_.SetReportedSequence(report.rank, report.arrived_seq);
      if (report.dead != 0 && !window_.Dead(report.rank)) {
        remote_deaths_[report.rank] = report.arrived_seq;  // applied once this host is past that barrier
      }
    }
    uint32_t dead_hosts = 0;
    if (!Take(message.body, &offset, &dead_hosts)) return;
    for (uint32_t i = 0; i < dead_hosts; ++i) {
      uint32_t host = 0;
      if (!Take(message.body, &offset, &host)) return;
      if (host < static_cast<uint32_t>(hosts_) && static_cast<int>(host) != me_) {
        failures_.emplace_back(static_cast<int>(host), fmt::format("host {} ({}) lost it", from, HostName(from)));
      }
    }
  }

  void OnPing(int from, const Message& message) {
    size_t offset = sizeof(MessageHeader);
    int64_t sent_ns = 0;
    if (!Take(message.body, &offset, &sent_ns)) return;
    std::vector<uint8_t> pong = Begin(Kind::kPong, message.header.seq, 0, 0);
    Append(pong, sent_ns);
    Append(pong, NowNs());
    Send(from, std::move(pong));
  }

  void SendPing() {
    std::vector<uint8_t> ping = Begin(Kind::kPing, static_cast<uint64_t>(samples_), 0, 0);
    Append(ping, NowNs());
    Send(0, std::move(ping));
  }

  void OnPong(const Message& message) {
    size_t offset = sizeof(MessageHeader);
    int64_t sent_ns = 0, host0_ns = 0;
    if (!Take(message.body, &offset, &sent_ns) || !Take(message.body, &offset, &host0_ns)) return;
    if (message.header.seq != static_cast<uint64_t>(samples_) || samples_ >= kClockSamples) return;  // stale
    const int64_t received_ns = NowNs();
    const int64_t round_trip = received_ns - sent_ns;
    ++samples_;
    if (best_round_trip_ < 0 || round_trip < best_round_trip_) {
      best_round_trip_ = round_trip;
      // host 0's clock read half way through, as seen from here: offset = host0 - ours.
      offset_ns_ = host0_ns - (sent_ns + received_ns) / 2;
      window_.SetClockOffset(offset_ns_, round_trip / 2);
    }
    if (samples_ < kClockSamples) {
      SendPing();
    } else {
      Log(LogLevel::kInfo, "group across hosts: host {} clock aligned with host 0: offset {} ns, error <= {} ns", me_,
          offset_ns_, best_round_trip_ / 2);
    }
  }

  // --- the collectives' transport (comm/transport/shm_transport.h) ---
  //
  // Each host's region has lines for every rank; local ranks write theirs, and this agent
  // copies what changed to the hosts that read it: a post (counters and slot bytes) and a
  // finish to every other host, a mailbox chunk (with its bytes) to its receiver's host, a take
  // or refusal back to the sender's host, a broken transport to every host. The copy of a
  // slot is safe to make while the rank waits: it rewrites its slot only after every rank,
  // remote ones included, finished reading it (or took the chunk), which needs this copy first.

  void SendTransport(int host, Record record, const void* fixed, size_t fixed_bytes, const std::byte* data,
                     size_t data_bytes) {
    if (host == me_ || state_[host].dead || state_[host].left) return;
    std::vector<uint8_t> bytes = Begin(Kind::kTransport, ++out_seq_[host], static_cast<uint32_t>(record), 0);
    const size_t at = bytes.size();
    bytes.resize(at + fixed_bytes + data_bytes);
    std::memcpy(bytes.data() + at, fixed, fixed_bytes);
    if (data_bytes > 0) std::memcpy(bytes.data() + at + fixed_bytes, data, data_bytes);
    Send(host, std::move(bytes));
  }

  void SendTransportToAll(Record record, const void* fixed, size_t fixed_bytes, const std::byte* data,
                          size_t data_bytes) {
    for (int host = 0; host < hosts_; ++host) SendTransport(host, record, fixed, fixed_bytes, data, data_bytes);
  }

  // Copies out what local ranks changed since the last call; nothing to do (one load) when
  // they changed nothing, so barriers do not pay for it.
  void ShipTransport() {
    const uint32_t changes = transport_.LocalChanges();
    if (changes == shipped_changes_) return;
    shipped_changes_ = changes;
    if (!broken_shipped_) {
      const std::string reason = transport_.BrokenReason();
      if (!reason.empty()) {
        broken_shipped_ = true;
        const std::string text = fmt::format("on host {} ({}): {}", me_, HostName(me_), reason);
        SendTransportToAll(Record::kBroken, text.data(), text.size(), nullptr, 0);
      }
    }
    for (int rank : local_ranks_) {
      const transport::ShmTransport::Progress now = transport_.RankProgress(rank);
      Shipped& shipped = shipped_progress_[rank];
      if (now.finished_seq > shipped.finished_seq) {
        shipped.finished_seq = now.finished_seq;
        const FinishRecord record{rank, 0, now.finished_seq};
        SendTransportToAll(Record::kFinish, &record, sizeof(record), nullptr, 0);
      }
      if (now.posted_seq > shipped.posted_seq) {
        shipped.posted_seq = now.posted_seq;
        const uint64_t bytes = std::min<uint64_t>(now.posted_bytes, transport_.Capacity());
        const PostRecord record{rank, 0, now.posted_seq, bytes};
        SendTransportToAll(Record::kPost, &record, sizeof(record), transport_.Slot(rank), bytes);
      }
      for (int peer = 0; peer < rank_count_; ++peer) {
        const int host = layout_.host_of_rank[peer];
        if (host == me_) continue;
        // This rank's chunk to a remote peer: the fields are stable until the peer takes it.
        transport::Mailbox& out = transport_.MailboxOf(rank, peer);
        BoxShipped& sent = Box(rank, peer);
        const uint64_t posted = out.posted.load(std::memory_order_acquire);
        if (posted != sent.posted) {
          sent.posted = posted;
          ChunkRecord record{rank,
                             peer,
                             posted,
                             out.offset.load(std::memory_order_relaxed),
                             out.bytes.load(std::memory_order_relaxed),
                             out.message.load(std::memory_order_relaxed),
                             out.message_bytes.load(std::memory_order_relaxed)};
          if (record.offset > transport_.Capacity() || record.bytes > transport_.Capacity() - record.offset) {
            record.bytes = 0;  // a wrong chunk: the receiver finds the message short
          }
          SendTransport(host, Record::kChunk, &record, sizeof(record), transport_.Slot(rank) + record.offset,
                        record.bytes);
        }
        // What this rank took and refused of a remote peer's chunks: the take last read first,
        // so a refusal made before it is seen with it (the receiver refuses, then takes).
        transport::Mailbox& in = transport_.MailboxOf(peer, rank);
        BoxShipped& got = Box(peer, rank);
        const uint64_t taken = in.taken.load(std::memory_order_acquire);
        const auto [rejected, expected] = in.Rejected();
        if (taken != got.taken || rejected != got.rejected) {
          got.taken = taken;
          got.rejected = rejected;
          const TakenRecord record{peer, rank, taken, rejected, expected};
          SendTransport(host, Record::kTaken, &record, sizeof(record), nullptr, 0);
        }
      }
    }
  }

  // Applies another host's transport messages in the order it sent them.
  void OnTransport(int from, Message message) {
    if (message.header.seq < in_next_[from]) return;  // a duplicate
    in_waiting_[from].emplace(message.header.seq, std::move(message));
    for (auto it = in_waiting_[from].begin(); it != in_waiting_[from].end() && it->first == in_next_[from];
         it = in_waiting_[from].erase(it)) {
      ++in_next_[from];
      ApplyTransport(from, it->second);
    }
  }

  void ApplyTransport(int from, const Message& message) {
    size_t offset = sizeof(MessageHeader);
    const std::string where = fmt::format("host {} ({})", from, HostName(from));
    auto remote = [&](int rank) { return rank >= 0 && rank < rank_count_ && layout_.host_of_rank[rank] == from; };
    auto local = [&](int rank) { return rank >= 0 && rank < rank_count_ && layout_.host_of_rank[rank] == me_; };
    auto data = [&](uint64_t bytes) -> const std::byte* {
      return message.body.size() - offset >= bytes ? reinterpret_cast<const std::byte*>(message.body.data() + offset)
                                                   : nullptr;
    };
    switch (static_cast<Record>(message.header.round)) {
      case Record::kPost: {
        PostRecord record{};
        if (!Take(message.body, &offset, &record) || !remote(record.rank)) return;
        if (const std::byte* bytes = data(record.bytes)) {
          transport_.ApplyPost(record.rank, record.seq, record.bytes, bytes, where);
        }
        break;
      }
      case Record::kFinish: {
        FinishRecord record{};
        if (Take(message.body, &offset, &record) && remote(record.rank))
          transport_.ApplyFinish(record.rank, record.seq);
        break;
      }
      case Record::kChunk: {
        ChunkRecord record{};
        if (!Take(message.body, &offset, &record) || !remote(record.from) || !local(record.to)) return;
        if (const std::byte* bytes = data(record.bytes)) {
          transport_.ApplyChunk(record.from, record.to, record.posted,
                                {record.offset, record.bytes, record.message, record.message_bytes}, bytes, where);
        }
        break;
      }
      case Record::kTaken: {
        TakenRecord record{};
        if (!Take(message.body, &offset, &record) || !local(record.from) || !remote(record.to)) return;
        transport_.ApplyTaken(record.from, record.to, record.taken, record.rejected, record.rejected_expected);
        break;
      }
      case Record::kBroken: {
        broken_shipped_ = true;  // every host hears it from the host that broke: no echo
        transport_.ApplyBroken(
            std::string(message.body.begin() + static_cast<std::ptrdiff_t>(offset), message.body.end()));
        break;
      }
    }
  }

  // --- liveness ---

  void SendHeartbeats() {
    std::vector<uint8_t> beat = Begin(Kind::kHeartbeat, cur_.seq, 0, static_cast<uint32_t>(local_ranks_.size()));
    for (int rank : local_ranks_) {
      Append(beat, RankReport{rank, window_.Dead(rank) ? 1u : 0u, window_.ArrivedSequence(rank)});
    }
    std::vector<uint32_t> dead;
    for (int host = 0; host < hosts_; ++host) {
      if (state_[host].dead) dead.push_back(static_cast<uint32_t>(host));
    }
    Append(beat, static_cast<uint32_t>(dead.size()));
    for (uint32_t host : dead) Append(beat, host);
    for (int host = 0; host < hosts_; ++host) Send(host, beat);
  }

  void CheckSilence(Clock::time_point now) {
    for (int host = 0; host < hosts_; ++host) {
      const HostState& peer = state_[host];
      if (host == me_ || peer.dead || peer.left || now - peer.last_heard <= host_timeout_) continue;
      failures_.emplace_back(host,
                             fmt::format("no heartbeat for {} ms",
                                         std::chrono::duration_cast<milliseconds>(now - peer.last_heard).count()));
    }
  }

  void ApplyFailures() {
    std::vector<std::pair<int, std::string>> failures;
    failures.swap(failures_);
    for (auto& [host, why] : failures) {
      HostState& peer = state_[host];
      if (host == me_ || peer.dead || peer.left) continue;
      peer.dead = true;
      const std::vector<int> ranks = layout_.RanksOn(host);
      Log(LogLevel::kWarning, "group across hosts: host {} ({}) is unreachable ({}); its ranks [{}] are lost", host,
          HostName(host), why, fmt::join(ranks, ", "));
      // Collectives fail on them at once; barriers once the live hosts agree (Exchange).
      window_.MarkUnreachable(std::span<const int>(ranks));
      unsettled_dead_.insert(unsettled_dead_.end(), ranks.begin(), ranks.end());
      if (peer.endpoint != nullptr) {
        ucp_request_param_t param{};
        param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        param.flags = UCP_EP_CLOSE_FLAG_FORCE;
        ucs_status_ptr_t request = Ucx().ucp_ep_close_nbx(peer.endpoint, &param);
        if (request != nullptr && !UCS_PTR_IS_ERR(request)) Ucx().ucp_request_free(request);
        peer.endpoint = nullptr;
      }
    }
    // A rank that died after arriving at barrier s is reported once this host passed s, so a
    // barrier it took part in is not failed for its death.
    for (auto it = remote_deaths_.begin(); it != remote_deaths_.end();) {
      if (it->second < cur_.seq) {
        Log(LogLevel::kInfo, "group across hosts: rank {} of host {} ({}) has exited", it->first,
            layout_.host_of_rank[it->first], HostName(layout_.host_of_rank[it->first]));
        window_.MarkDead(it->first);
        it = remote_deaths_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Marks the ranks of dead hosts dead in the window: the barriers waiting for them fail.
  void SettleDeaths() {
    if (unsettled_dead_.empty()) return;
    window_.MarkDead(std::span<const int>(unsettled_dead_));
    unsettled_dead_.clear();
  }

  // A direct message for a barrier this host has passed: the sender lacks arrivals it needs to
  // decide it. Answer once, to every live host, with what this host had.
  void OnLateAsk(uint64_t seq) {
    if (previous_.seq != seq || previous_.direct_sent || !previous_.started) return;
    previous_.direct_sent = true;
    for (int host = 0; host < hosts_; ++host) Send(host, BarrierMessage(previous_, kDirectRound));
  }

  bool AnyHostDead() const {
    return std::any_of(state_.begin(), state_.end(), [](const HostState& host) { return host.dead; });
  }

  // --- barriers ---

  void Advance() {
    for (;;) {
      if (!cur_.started && !TryStart()) {
        if (SkipUnstarted() || AbandonUnstarted()) continue;
        return;
      }
      const Exchanged exchanged = Exchange();
      if (exchanged == Exchanged::kFailed) {
        SettleDeaths();
        NextBarrier();
        continue;
      }
      if (exchanged == Exchanged::kWaiting) {
        if (Abandon()) continue;
        return;
      }
      Complete();
    }
  }

  bool LocalArrivedAt(uint64_t seq) const {
    return std::any_of(local_ranks_.begin(), local_ranks_.end(),
                       [&](int rank) { return window_.ArrivedSequence(rank) >= seq; });
  }

  const Message* BufferedFor(uint64_t seq) const {
    auto it = buffered_.lower_bound(std::tuple(seq, uint32_t{0}, 0));
    return it != buffered_.end() && std::get<0>(it->first) == seq ? &it->second : nullptr;
  }

  bool BufferedAfter(uint64_t seq) const {
    return buffered_.lower_bound(std::tuple(seq + 1, uint32_t{0}, 0)) != buffered_.end();
  }

  std::vector<int> RequiredFrom(const Message& message) const {
    std::vector<int> required;
    size_t offset = sizeof(MessageHeader);
    for (size_t word = 0; word < words_; ++word) {
      uint64_t bits = 0;
      if (!Take(message.body, &offset, &bits)) return {};
      for (int bit = 0; bit < 64; ++bit) {
        const int rank = static_cast<int>(word * 64) + bit;
        if (rank < rank_count_ && ((bits >> bit) & 1)) required.push_back(rank);
      }
    }
    return required;
  }

  // Barrier cur_.seq starts here once every local rank it requires arrived.
  bool TryStart() {
    const uint64_t seq = cur_.seq;
    std::vector<int> required;
    if (LocalArrivedAt(seq)) {
      required = window_.RequiredAt(seq);
    } else if (const Message* message = BufferedFor(seq)) {
      required = RequiredFrom(*message);  // this host has no rank in it, or none arrived yet
    } else {
      return false;
    }
    for (int rank : required) {
      if (layout_.host_of_rank[rank] == me_ && window_.ArrivedSequence(rank) < seq) return false;
    }
    cur_.started = true;
    cur_.required = std::move(required);
    cur_.required_bits.assign(words_, 0);
    for (int rank : cur_.required) {
      cur_.required_bits[static_cast<size_t>(rank) / 64] |= uint64_t{1} << (rank % 64);
      if (layout_.host_of_rank[rank] == me_) cur_.known[rank] = window_.ArrivalNs(rank, seq) + offset_ns_;
    }
    return true;
  }

  std::vector<uint8_t> BarrierMessage(uint32_t round) const { return BarrierMessage(cur_, round); }
  std::vector<uint8_t> BarrierMessage(const Current& barrier, uint32_t round) const {
    std::vector<uint8_t> bytes = Begin(Kind::kBarrier, barrier.seq, round, static_cast<uint32_t>(barrier.known.size()));
    for (uint64_t word : barrier.required_bits) Append(bytes, word);
    for (const auto& [rank, ns] : barrier.known) Append(bytes, ArrivalEntry{rank, 0, ns});
    return bytes;
  }

  void Merge(const Message& message) {
    size_t offset = sizeof(MessageHeader) + words_ * sizeof(uint64_t);
    for (uint32_t i = 0; i < message.header.count; ++i) {
      ArrivalEntry entry{};
      if (!Take(message.body, &offset, &entry)) return;
      if (entry.rank >= 0 && entry.rank < rank_count_) cur_.known.emplace(entry.rank, entry.ns);
    }
  }

  // Dissemination while every host lives; straight to every live host once one is dead.
  //
  // Once a host is dead, the live hosts must agree on each barrier it may have been part of:
  // some may hold its arrivals (a message that came before it died, directly or relayed) and
  // others not. So each live host merges what it has, sends that once to every live host (its
  // direct message: after it, nothing of the dead host counts here, since its messages are
  // dropped), and the barrier completes where the union of what came covers the required
  // ranks. Everyone gets the same messages, so the verdict is the same everywhere: it fails
  // only once every live host's direct message came and still does not cover it. A host that
  // had passed the barrier before it learnt of the death answers with what it had (OnLateAsk).
  // The dead host's ranks are marked dead in the window only when a barrier fails that way
  // (SettleDeaths), so no local rank fails a barrier that the others complete.
  enum class Exchanged { kWaiting, kComplete, kFailed };
  Exchanged Exchange() {
    const uint64_t seq = cur_.seq;
    if (AnyHostDead()) {
      for (auto it = buffered_.begin(); it != buffered_.end() && std::get<0>(it->first) <= seq;) {
        if (std::get<0>(it->first) == seq) {
          Merge(it->second);
          if (std::get<1>(it->first) == kDirectRound) cur_.answered.insert(std::get<2>(it->first));
        }
        it = buffered_.erase(it);
      }
      if (!cur_.direct_sent) {
        for (int host = 0; host < hosts_; ++host) Send(host, BarrierMessage(kDirectRound));
        cur_.direct_sent = true;
      }
      const bool covered = std::all_of(cur_.required.begin(), cur_.required.end(), [&](int rank) {
        return cur_.known.count(rank) != 0 || state_[layout_.host_of_rank[rank]].left;
      });
      if (covered) return Exchanged::kComplete;
      for (int host = 0; host < hosts_; ++host) {
        const HostState& peer = state_[host];
        if (host != me_ && !peer.dead && !peer.left && cur_.answered.count(host) == 0) return Exchanged::kWaiting;
      }
      return Exchanged::kFailed;
    }
    while (cur_.round < static_cast<uint32_t>(rounds_)) {
      const int distance = 1 << cur_.round;
      if (!cur_.round_sent) {
        Send((me_ + distance) % hosts_, BarrierMessage(cur_.round));
        cur_.round_sent = true;
      }
      const int from = ((me_ - distance) % hosts_ + hosts_) % hosts_;
      auto it = buffered_.find(std::tuple(seq, cur_.round, from));
      if (it == buffered_.end()) return Exchanged::kWaiting;
      Merge(it->second);
      buffered_.erase(it);
      ++cur_.round;
      cur_.round_sent = false;
    }
    return Exchanged::kComplete;
  }

  // Releases cur_.seq here, unless a rank it requires was marked dead before its arrival was
  // written: local ranks may have failed the barrier already on that (BarrierWindow::Wait), so
  // releasing it now would let the others pass the barrier they failed, and the ranks would
  // count their barriers differently from then on (an elastic restart would wait forever).
  // Only this thread writes remote ranks' arrivals and deaths, so the check cannot race.
  void Complete() {
    const uint64_t seq = cur_.seq;
    const bool failed_here = std::any_of(cur_.required.begin(), cur_.required.end(), [&](int rank) {
      return layout_.host_of_rank[rank] != me_ && window_.Dead(rank) && window_.ArrivedSequence(rank) < seq;
    });
    if (failed_here) {
      Log(LogLevel::kInfo,
          "group across hosts: barrier #{} stays failed on this host: arrivals came for ranks already "
          "marked dead",
          seq);
      last_completed_ = Clock::now();
      NextBarrier();
      return;
    }
    for (int rank : cur_.required) {
      if (layout_.host_of_rank[rank] == me_) continue;
      auto it = cur_.known.find(rank);
      if (it != cur_.known.end()) window_.ArriveForAgent(rank, seq, it->second - offset_ns_);
    }
    if (window_.AgentReached(seq, cur_.required) && on_release_) on_release_(seq, cur_.required);
    last_completed_ = Clock::now();
    NextBarrier();
  }

  void NextBarrier() {
    const uint64_t seq = cur_.seq;
    for (auto it = buffered_.begin(); it != buffered_.end() && std::get<0>(it->first) <= seq;) it = buffered_.erase(it);
    previous_ = std::move(cur_);
    cur_ = Current{};
    cur_.seq = seq + 1;
  }

  // A barrier that never started here while the others moved past it (it did not need this
  // host, or it was given up): skip it.
  bool SkipUnstarted() {
    if (LocalArrivedAt(cur_.seq) || BufferedFor(cur_.seq) != nullptr || !BufferedAfter(cur_.seq)) return false;
    NextBarrier();
    return true;
  }

  // A barrier that cannot start here because a local rank it requires died before arriving:
  // the other local ranks fail it (BarrierWindow::Wait), and so do the other hosts once this
  // host reports the death. Give it up once anything moves past it, as Abandon does.
  bool AbandonUnstarted() {
    const uint64_t seq = cur_.seq;
    if (!LocalArrivedAt(seq) || !(LocalArrivedAt(seq + 1) || BufferedAfter(seq))) return false;
    const std::vector<int> required = window_.RequiredAt(seq);
    const bool dead = std::any_of(required.begin(), required.end(), [&](int rank) {
      return layout_.host_of_rank[rank] == me_ && window_.Dead(rank) && window_.ArrivedSequence(rank) < seq;
    });
    if (!dead) return false;
    NextBarrier();
    return true;
  }

  // A barrier with a dead required rank never completes: give it up once anything moves past it.
  bool Abandon() {
    const bool dead = std::any_of(cur_.required.begin(), cur_.required.end(),
                                  [&](int rank) { return window_.Dead(rank) && cur_.known.count(rank) == 0; });
    if (!dead || !(LocalArrivedAt(cur_.seq + 1) || BufferedAfter(cur_.seq))) return false;
    NextBarrier();
    return true;
  }

  const HostLayout layout_;
  const int me_;
  const int hosts_;
  const int rank_count_;
  const size_t words_;
  int rounds_ = 0;
  BarrierWindow window_;
  HostAgent::ReleaseCallback on_release_;  // set before the thread starts
  const std::vector<int> local_ranks_;
  std::vector<HostState> state_;
  std::vector<EndpointArg> endpoint_args_;
  const milliseconds heartbeat_;
  const milliseconds host_timeout_;
  const std::chrono::microseconds spin_;
  Clock::time_point last_completed_{};
  // The collectives' transport: this host's region, and what was copied out and in.
  transport::ShmTransport transport_;
  uint32_t shipped_changes_ = 0;
  bool broken_shipped_ = false;
  std::vector<Shipped> shipped_progress_;                // by rank
  std::vector<BoxShipped> shipped_boxes_;                // by (from, to)
  std::vector<uint64_t> out_seq_;                        // by destination host: transport messages sent
  std::vector<uint64_t> in_next_;                        // by source host: the next one to apply
  std::vector<std::map<uint64_t, Message>> in_waiting_;  // by source host: come early

  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int worker_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<uint8_t> address_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> started_{false};
  // Until when waiters help (steady ns; 0: none), and the value last published in the window.
  std::atomic<int64_t> helped_until_ns_{0};
  std::atomic<int64_t> promised_until_ns_{0};
  std::atomic<int> helpers_{0};         // waiters helping now
  std::atomic<uint32_t> word_seen_{0};  // the arrival word at the start of the last turn
  std::thread bridge_;
  std::thread thread_;

  // The agent's state, used by whoever holds work_mutex_: its thread or a helping waiter.
  std::mutex work_mutex_;
  Clock::time_point next_heartbeat_;
  Clock::time_point next_ping_;
  std::deque<Message> inbox_;
  std::vector<std::pair<int, std::string>> failures_;  // host, why
  std::map<int, uint64_t> remote_deaths_;              // rank -> the last barrier it arrived at
  std::vector<PendingSend> sends_;
  std::map<std::tuple<uint64_t, uint32_t, int>, Message> buffered_;  // (seq, round, from)
  Current cur_;
  Current previous_;                 // the barrier before cur_, for late askers (OnLateAsk)
  std::vector<int> unsettled_dead_;  // ranks of dead hosts, not yet marked dead in the window
  int samples_ = 0;
  int64_t best_round_trip_ = -1;
  int64_t offset_ns_ = 0;  // host 0's clock minus ours
};

std::unique_ptr<HostAgent> HostAgent::Create(const HostLayout& layout, void* window_memory, int rank_count,
                                             std::string* error) {
  if (LoadUcx(error) == nullptr) return nullptr;
  auto impl = std::make_unique<Impl>(layout, window_memory, rank_count);
  if (!impl->Init(error)) return nullptr;
  return std::unique_ptr<HostAgent>(new HostAgent(std::move(impl)));
}

HostAgent::HostAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HostAgent::~HostAgent() = default;

const std::vector<uint8_t>& HostAgent::WorkerAddress() const {
  return impl_->Address();
}

void HostAgent::OnRelease(ReleaseCallback callback) {
  impl_->OnRelease(std::move(callback));
}

std::optional<std::string> HostAgent::Start(const std::vector<std::vector<uint8_t>>& addresses) {
  return impl_->Start(addresses);
}

void HostAgent::BeginHelping() {
  impl_->BeginHelping();
}

void HostAgent::EndHelping() {
  impl_->EndHelping();
}

bool HostAgent::Help() {
  return impl_->Help();
}

void HostAgent::StopHelping() {
  impl_->StopHelping();
}

}  // namespace distbarrier::comm
