// The UCX floor for tests/hosts/run_hosts.sh perf-H: two processes (in two namespaces) exchange
// UCX worker addresses through files in WORKDIR, then rank 1 sends an active message and rank 0
// answers it, ITERS times, both busy polling. Kept apart from hosts_rank so that hosts_rank, like
// any program using distbarrier, does not link UCX (the library loads it only when needed).
//
//   hosts_pingpong RANK WORKDIR ITERS     prints "rank R: PINGPONG <us> us per round trip"
#include <ucp/api/ucp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::printf("pingpong: FAIL %s\n", what.c_str());
  std::exit(1);
}

// The UCX floor: rank 0 and 1 exchange worker addresses through files, then rank 1 sends an
// active message and rank 0 answers it, ITERS times, both busy polling.
std::atomic<int> pingpong_received{0};
ucs_status_t OnPing(void*, const void*, size_t, void*, size_t, const ucp_am_recv_param_t*) {
  pingpong_received.fetch_add(1, std::memory_order_relaxed);
  return UCS_OK;
}

int PingPong(int rank, const std::string& workdir, int iterations) {
  ucp_config_t* config = nullptr;
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_AM;
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  if (ucp_config_read(nullptr, nullptr, &config) != UCS_OK || ucp_init(&params, config, &context) != UCS_OK) {
    Die("ucp_init");
  }
  ucp_config_release(config);
  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
  if (ucp_worker_create(context, &worker_params, &worker) != UCS_OK) Die("ucp_worker_create");
  ucp_am_handler_param_t handler{};
  handler.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB;
  handler.id = 3;
  handler.cb = OnPing;
  ucp_worker_set_am_recv_handler(worker, &handler);
  ucp_address_t* address = nullptr;
  size_t length = 0;
  ucp_worker_get_address(worker, &address, &length);
  const std::string mine = workdir + "/pp." + std::to_string(rank),
                    theirs = workdir + "/pp." + std::to_string(1 - rank);
  std::ofstream(mine + ".tmp", std::ios::binary)
      .write(reinterpret_cast<char*>(address), static_cast<std::streamsize>(length));
  std::rename((mine + ".tmp").c_str(), mine.c_str());
  ucp_worker_release_address(worker, address);
  std::string peer;
  for (int i = 0; i < 6000 && peer.empty(); ++i) {
    std::ifstream in(theirs, std::ios::binary);
    peer.assign(std::istreambuf_iterator<char>(in), {});
    if (peer.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a file: pacing only
  }
  if (peer.empty()) Die("no peer address");
  ucp_ep_params_t ep_params{};
  ep_params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
  ep_params.address = reinterpret_cast<const ucp_address_t*>(peer.data());
  ucp_ep_h endpoint = nullptr;
  if (ucp_ep_create(worker, &ep_params, &endpoint) != UCS_OK) Die("ucp_ep_create");
  uint64_t payload = 0;
  auto send = [&] {
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = UCP_AM_SEND_FLAG_EAGER;
    ucs_status_ptr_t request = ucp_am_send_nbx(endpoint, 3, nullptr, 0, &payload, sizeof(payload), &param);
    if (UCS_PTR_IS_ERR(request)) Die("ucp_am_send_nbx");
    while (request != nullptr && ucp_request_check_status(request) == UCS_INPROGRESS) ucp_worker_progress(worker);
    if (request != nullptr) ucp_request_free(request);
  };
  auto await = [&](int count) {
    while (pingpong_received.load(std::memory_order_relaxed) < count) ucp_worker_progress(worker);
  };
  constexpr int kWarmup = 200;
  std::chrono::steady_clock::time_point start;
  for (int i = 0; i < kWarmup + iterations; ++i) {
    if (i == kWarmup) start = std::chrono::steady_clock::now();
    if (rank == 1) {
      send();
      await(i + 1);
    } else {
      await(i + 1);
      send();
    }
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  for (int i = 0; i < 100; ++i) ucp_worker_progress(worker);  // let the last answer leave
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ucp_request_param_t close_param{};
  close_param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  close_param.flags = UCP_EP_CLOSE_FLAG_FORCE;
  ucs_status_ptr_t closing = ucp_ep_close_nbx(endpoint, &close_param);
  if (closing != nullptr && !UCS_PTR_IS_ERR(closing)) ucp_request_free(closing);
  ucp_worker_destroy(worker);
  ucp_cleanup(context);
  std::printf("rank %d: PINGPONG %.2f us per round trip\n", rank, us / iterations);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  return PingPong(std::atoi(argv[1]), argv[2], std::atoi(argv[3]));
}
