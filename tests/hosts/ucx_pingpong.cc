// The UCX floors for tests/hosts/run_hosts.sh perf-H, processes (one per namespace) that
// exchange UCX worker addresses through files in WORKDIR. Kept apart from hosts_rank so that
// hosts_rank, like any program using distbarrier, does not link UCX (the library loads it only
// when needed).
//
//   hosts_pingpong RANK WORKDIR ITERS          rank 1 sends an active message and rank 0 answers
//                                              it, ITERS times, both busy polling; prints
//                                              "rank R: PINGPONG <us> us per round trip"
//   hosts_pingpong RANK WORKDIR ITERS HOSTS    HOSTS ranks run ITERS dissemination barriers of
//                                              bare active messages (ceil(log2 HOSTS) rounds),
//                                              polling with a yield when idle as MPI_Barrier
//                                              does here (mpi_yield_when_idle); prints "rank R:
//                                              DISSEMINATION <us> us per barrier": what one
//                                              thread per host that does nothing else reaches
//                                              on this machine's cores
#include <ucp/api/ucp.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::printf("pingpong: FAIL %s\n", what.c_str());
  std::exit(1);
}

std::atomic<int> pingpong_received{0};
constexpr int kMaxRounds = 16;
std::atomic<int> round_received[kMaxRounds];  // dissemination: messages that came in each round

ucs_status_t OnPing(void*, const void*, size_t, void* data, size_t length, const ucp_am_recv_param_t*) {
  pingpong_received.fetch_add(1, std::memory_order_relaxed);
  uint64_t round = 0;
  if (length >= sizeof(round)) std::memcpy(&round, data, sizeof(round));
  if (round < kMaxRounds) round_received[round].fetch_add(1, std::memory_order_relaxed);
  return UCS_OK;
}

class Node {
 public:
  Node(int rank, const std::string& workdir) : rank_(rank), workdir_(workdir) {
    ucp_config_t* config = nullptr;
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_AM;
    if (ucp_config_read(nullptr, nullptr, &config) != UCS_OK || ucp_init(&params, config, &context_) != UCS_OK) {
      Die("ucp_init");
    }
    ucp_config_release(config);
    ucp_worker_params_t worker_params{};
    worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
    if (ucp_worker_create(context_, &worker_params, &worker_) != UCS_OK) Die("ucp_worker_create");
    ucp_am_handler_param_t handler{};
    handler.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB;
    handler.id = 3;
    handler.cb = OnPing;
    ucp_worker_set_am_recv_handler(worker_, &handler);
    ucp_address_t* address = nullptr;
    size_t length = 0;
    ucp_worker_get_address(worker_, &address, &length);
    const std::string mine = workdir_ + "/pp." + std::to_string(rank_);
    std::ofstream(mine + ".tmp", std::ios::binary)
        .write(reinterpret_cast<char*>(address), static_cast<std::streamsize>(length));
    std::rename((mine + ".tmp").c_str(), mine.c_str());
    ucp_worker_release_address(worker_, address);
  }

  ~Node() {
    for (int i = 0; i < 100; ++i) ucp_worker_progress(worker_);  // let the last messages leave
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (auto& [peer, endpoint] : endpoints_) {
      ucp_request_param_t close_param{};
      close_param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      close_param.flags = UCP_EP_CLOSE_FLAG_FORCE;
      ucs_status_ptr_t closing = ucp_ep_close_nbx(endpoint, &close_param);
      if (closing != nullptr && !UCS_PTR_IS_ERR(closing)) ucp_request_free(closing);
    }
    ucp_worker_destroy(worker_);
    ucp_cleanup(context_);
  }

  // An endpoint to `peer`, once its address file is there.
  void Connect(int peer) {
    if (endpoints_.count(peer) != 0) return;
    const std::string theirs = workdir_ + "/pp." + std::to_string(peer);
    std::string address;
    for (int i = 0; i < 6000 && address.empty(); ++i) {
      std::ifstream in(theirs, std::ios::binary);
      address.assign(std::istreambuf_iterator<char>(in), {});
      if (address.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a file: pacing only
    }
    if (address.empty()) Die("no address of rank " + std::to_string(peer));
    ucp_ep_params_t ep_params{};
    ep_params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
    ep_params.address = reinterpret_cast<const ucp_address_t*>(address.data());
    if (ucp_ep_create(worker_, &ep_params, &endpoints_[peer]) != UCS_OK) Die("ucp_ep_create");
  }

  void Send(int peer, uint64_t payload) {
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = UCP_AM_SEND_FLAG_EAGER;
    ucs_status_ptr_t request = ucp_am_send_nbx(endpoints_.at(peer), 3, nullptr, 0, &payload, sizeof(payload), &param);
    if (UCS_PTR_IS_ERR(request)) Die("ucp_am_send_nbx");
    while (request != nullptr && ucp_request_check_status(request) == UCS_INPROGRESS) ucp_worker_progress(worker_);
    if (request != nullptr) ucp_request_free(request);
  }

  // Progresses until *counter reaches `count`; with `yield`, gives the core away when idle.
  void Await(const std::atomic<int>& counter, int count, bool yield) {
    while (counter.load(std::memory_order_relaxed) < count) {
      if (ucp_worker_progress(worker_) == 0 && yield) sched_yield();
    }
  }

 private:
  const int rank_;
  const std::string workdir_;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::map<int, ucp_ep_h> endpoints_;
};

constexpr int kWarmup = 200;

int PingPong(int rank, const std::string& workdir, int iterations) {
  Node node(rank, workdir);
  node.Connect(1 - rank);
  std::chrono::steady_clock::time_point start;
  for (int i = 0; i < kWarmup + iterations; ++i) {
    if (i == kWarmup) start = std::chrono::steady_clock::now();
    if (rank == 1) {
      node.Send(0, kMaxRounds);
      node.Await(pingpong_received, i + 1, /*yield=*/false);
    } else {
      node.Await(pingpong_received, i + 1, /*yield=*/false);
      node.Send(1, kMaxRounds);
    }
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::printf("rank %d: PINGPONG %.2f us per round trip\n", rank, us / iterations);
  return 0;
}

int Dissemination(int rank, const std::string& workdir, int iterations, int hosts) {
  int rounds = 0;
  while ((1 << rounds) < hosts) ++rounds;
  if (rounds > kMaxRounds) Die("too many hosts");
  Node node(rank, workdir);
  for (int round = 0; round < rounds; ++round) node.Connect((rank + (1 << round)) % hosts);
  std::chrono::steady_clock::time_point start;
  for (int i = 0; i < kWarmup + iterations; ++i) {
    if (i == kWarmup) start = std::chrono::steady_clock::now();
    for (int round = 0; round < rounds; ++round) {
      node.Send((rank + (1 << round)) % hosts, static_cast<uint64_t>(round));
      node.Await(round_received[round], i + 1, /*yield=*/true);
    }
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::printf("rank %d: DISSEMINATION %.2f us per barrier\n", rank, us / iterations);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  if (argc >= 5) return Dissemination(std::atoi(argv[1]), argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  return PingPong(std::atoi(argv[1]), argv[2], std::atoi(argv[3]));
}
