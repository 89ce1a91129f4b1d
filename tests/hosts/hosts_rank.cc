// One rank of a group across hosts, for tests/hosts/run_hosts.sh (which runs it inside network
// namespaces that stand for hosts). Rank 0 writes the root info to WORKDIR/root.bin; the others
// read it from there. Prints one line "rank R: ..." and exits 0 when the mode's expectation held.
//
//   hosts_rank run N R WORKDIR BARRIERS      barriers with random jitter; arrive/leave tickets in
//                                            WORKDIR/tickets (a shared counter: the barrier property)
//   hosts_rank check N WORKDIR BARRIERS      checks the tickets (no rank left k before all arrived)
//   hosts_rank wrong-secret N R WORKDIR      joins with one secret byte changed: must be refused
//   hosts_rank until-failure N R WORKDIR [ELASTIC_DEAD_RANKS]
//                                            barriers until one fails; prints the status, the
//                                            message and CLOCK_REALTIME of the failure; with dead
//                                            ranks given ("4,5,6,7"), then 20 elastic barriers
//                                            without them
//   hosts_rank slow N R WORKDIR SLOW_RANK    30 barriers, SLOW_RANK 5 ms late each; rank 0 prints
//                                            the rank the statistics find slowest
//   hosts_rank perf N R WORKDIR ITERS        barrier round trips (launch + synchronize); rank 0
//                                            prints microseconds per barrier
//   hosts_rank table N R WORKDIR IP PORT     the rank-table path: every rank builds the root info
//                                            itself (comm::CreateRootInfoAt: rank 0 listens at
//                                            IP:PORT, the others connect, also those on rank 0's
//                                            host) and joins with api::JoinComm; 50 barriers
//   hosts_rank late N R WORKDIR LATE_RANK    3 barriers, LATE_RANK 2.5 s late to the first (the
//                                            others' hang warning names it and its host)
//   hosts_rank collectives N R WORKDIR       every HCCL collective (counts 0, 1, odd, 1 MB) and
//                                            a send/receive ring, each checked against a host
//                                            reference (tests/op/hccl_world.h); with 4 ranks
//                                            also MoE dispatch -> expert -> combine (EP 4,
//                                            tests/op/moe_world.h)
//   hosts_rank collectives-until-failure N R WORKDIR
//                                            AllReduces until one fails; prints the status, the
//                                            message and CLOCK_REALTIME of the failure
#include <acl/acl.h>
#include <aclnnop/aclnn_distribute_barrier_v2.h>
#include <distbarrier/distbarrier.h>
#include <fcntl.h>
#include <hccl/hccl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/join_comm.h"
#include "comm/bootstrap/bootstrap.h"
#include "comm/bootstrap/root_info.h"
#include "comm/bootstrap/wire.h"
#include "op/hccl_world.h"
#include "op/moe_world.h"
#include "system/barrier_checker.h"

namespace {

using distbarrier::testing::ApplyJitter;
using distbarrier::testing::Jitter;
using distbarrier::testing::RandomJitter;
using distbarrier::testing::TakeTicket;
using distbarrier::testing::Ticket;

int rank_id = -1;

[[noreturn]] void Fail(const std::string& what) {
  std::printf("rank %d: FAIL %s: %s\n", rank_id, what.c_str(), aclGetRecentErrMsg());
  std::fflush(stdout);
  std::_Exit(1);
}

bool ReadRoot(const std::string& workdir, HcclRootInfo* root) {
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < limit) {
    std::ifstream in(workdir + "/root.bin", std::ios::binary);
    if (in.read(root->internal, sizeof(root->internal))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a file: pacing only
  }
  return false;
}

void WriteRoot(const std::string& workdir, const HcclRootInfo& root) {
  const std::string temporary = workdir + "/root.tmp";
  std::ofstream(temporary, std::ios::binary).write(root.internal, sizeof(root.internal));
  std::rename(temporary.c_str(), (workdir + "/root.bin").c_str());
}

HcclComm Join(int ranks, int rank, const std::string& workdir) {
  HcclRootInfo root{};
  if (rank == 0) {
    if (HcclGetRootInfo(&root) != HCCL_SUCCESS) Fail("HcclGetRootInfo");
    WriteRoot(workdir, root);
  } else if (!ReadRoot(workdir, &root)) {
    Fail("no root info in " + workdir);
  }
  HcclComm comm = nullptr;
  if (HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &root, static_cast<uint32_t>(rank), &comm) != HCCL_SUCCESS) {
    Fail("HcclCommInitRootInfo");
  }
  return comm;
}

std::string GroupOf(HcclComm comm) {
  char name[COMM_NAME_MAX_LENGTH] = {};
  HcclGetCommName(comm, name);
  return name;
}

struct Tensor {
  void* data = nullptr;
  aclTensor* tensor = nullptr;
};

Tensor MakeTensor(aclDataType type, const std::vector<int32_t>& values) {
  Tensor made;
  const int64_t count = values.empty() ? 1 : static_cast<int64_t>(values.size());
  const size_t bytes = static_cast<size_t>(count) * 4;
  if (aclrtMalloc(&made.data, bytes, ACL_MEM_MALLOC_HUGE_FIRST) != 0) Fail("aclrtMalloc");
  if (!values.empty()) aclrtMemcpy(made.data, bytes, values.data(), bytes, ACL_MEMCPY_HOST_TO_DEVICE);
  int64_t shape = count, stride = 1;
  made.tensor = aclCreateTensor(&shape, 1, type, &stride, 0, ACL_FORMAT_ND, &shape, 1, made.data);
  return made;
}

int EnqueueBarrier(const Tensor& x_ref, const Tensor* elastic, const std::string& group, int ranks,
                   aclrtStream stream) {
  uint64_t workspace = 0;
  aclOpExecutor* executor = nullptr;
  int status = aclnnDistributeBarrierV2GetWorkspaceSize(x_ref.tensor, nullptr, elastic ? elastic->tensor : nullptr,
                                                        group.c_str(), ranks, &workspace, &executor);
  return status != 0 ? status : aclnnDistributeBarrierV2(nullptr, workspace, executor, stream);
}

int64_t RealtimeNs() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// The ticket file: counter, then arrive[rank][k], then leave[rank][k].
uint64_t* MapTickets(const std::string& workdir, int ranks, int barriers) {
  const size_t bytes = (1 + 2 * static_cast<size_t>(ranks) * barriers) * sizeof(uint64_t);
  const int fd = open((workdir + "/tickets").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0) Fail("ticket file");
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (memory == MAP_FAILED) Fail("mmap tickets");
  return static_cast<uint64_t*>(memory);
}

int Run(int ranks, int rank, const std::string& workdir, int barriers) {
  uint64_t* tickets = MapTickets(workdir, ranks, barriers);
  auto* counter = reinterpret_cast<std::atomic<uint64_t>*>(tickets);
  uint64_t* arrive = tickets + 1 + static_cast<size_t>(rank) * barriers;
  uint64_t* leave = tickets + 1 + static_cast<size_t>(ranks + rank) * barriers;
  HcclComm comm = Join(ranks, rank, workdir);
  const std::string group = GroupOf(comm);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  Tensor x_ref = MakeTensor(ACL_FLOAT, {});
  std::mt19937 rng(static_cast<uint32_t>(7919 * rank + 17));
  std::vector<Jitter> jitters(static_cast<size_t>(barriers));
  std::vector<Ticket> arrive_tickets(static_cast<size_t>(barriers)), leave_tickets(static_cast<size_t>(barriers));
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < barriers; ++k) {
    jitters[k] = RandomJitter(rng);
    arrive_tickets[k] = {counter, &arrive[k]};
    leave_tickets[k] = {counter, &leave[k]};
    if (aclrtLaunchHostFunc(stream, ApplyJitter, &jitters[k]) != 0) Fail("launch jitter");
    if (aclrtLaunchHostFunc(stream, TakeTicket, &arrive_tickets[k]) != 0) Fail("launch ticket");
    if (EnqueueBarrier(x_ref, nullptr, group, ranks, stream) != 0) Fail("barrier " + std::to_string(k));
    if (aclrtLaunchHostFunc(stream, TakeTicket, &leave_tickets[k]) != 0) Fail("launch ticket");
    if (rng() % 8 == 0 && aclrtSynchronizeStream(stream) != 0) Fail("synchronize at " + std::to_string(k));
  }
  if (aclrtSynchronizeStream(stream) != 0) Fail("synchronize");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  aclrtDestroyStream(stream);
  HcclCommDestroy(comm);
  aclFinalize();  // joins the stream threads
  std::printf("rank %d: OK %d barriers in %.1f ms\n", rank, barriers, ms);
  return 0;
}

int Check(int ranks, const std::string& workdir, int barriers) {
  uint64_t* tickets = MapTickets(workdir, ranks, barriers);
  std::vector<std::vector<uint64_t>> arrive(ranks), leave(ranks);
  for (int r = 0; r < ranks; ++r) {
    arrive[r].assign(tickets + 1 + static_cast<size_t>(r) * barriers,
                     tickets + 1 + static_cast<size_t>(r + 1) * barriers);
    leave[r].assign(tickets + 1 + static_cast<size_t>(ranks + r) * barriers,
                    tickets + 1 + static_cast<size_t>(ranks + r + 1) * barriers);
  }
  const std::string violation = distbarrier::testing::FirstViolation(arrive, leave);
  if (!violation.empty()) {
    std::printf("check: FAIL %s\n", violation.c_str());
    return 1;
  }
  std::printf("check: OK barrier property holds for %d barriers on %d ranks\n", barriers, ranks);
  return 0;
}

int WrongSecret(int ranks, int rank, const std::string& workdir) {
  HcclRootInfo root{};
  if (!ReadRoot(workdir, &root)) Fail("no root info");
  auto decoded = distbarrier::comm::RootInfo::Decode(root);
  if (!std::holds_alternative<distbarrier::comm::RootInfo>(decoded)) Fail("root info does not decode");
  auto info = std::get<distbarrier::comm::RootInfo>(decoded);
  info.secret[5] ^= 0x40;
  info.Encode(&root);
  HcclComm comm = nullptr;
  const HcclResult result =
      HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &root, static_cast<uint32_t>(rank), &comm);
  const std::string message = aclGetRecentErrMsg();
  if (result == HCCL_E_PARA && message.find("wrong secret") != std::string::npos) {
    std::printf("rank %d: REFUSED as expected: %s\n", rank, message.c_str());
    return 0;
  }
  std::printf("rank %d: FAIL wrong secret answered %d: %s\n", rank, result, message.c_str());
  return 1;
}

std::vector<int> ParseRanks(const std::string& text) {
  std::vector<int> ranks;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) ranks.push_back(std::stoi(part));
  }
  return ranks;
}

int UntilFailure(int ranks, int rank, const std::string& workdir, const std::vector<int>& dead) {
  HcclComm comm = Join(ranks, rank, workdir);
  const std::string group = GroupOf(comm);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  Tensor x_ref = MakeTensor(ACL_FLOAT, {});
  // Tell the script the group runs (it kills or cuts once every rank said so).
  std::ofstream(workdir + "/running." + std::to_string(rank)).put('1');
  const char* slow_env = std::getenv("HOSTS_SLOW_RANK");
  const int slow_rank = slow_env != nullptr ? std::atoi(slow_env) : ranks / 2 - 1;
  int status = 0;
  uint64_t done = 0;
  while (true) {
    status = EnqueueBarrier(x_ref, nullptr, group, ranks, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) break;
    ++done;
    // A steady pace of barriers. One rank (HOSTS_SLOW_RANK, default the last of the first half)
    // comes later than the others, so a host that dies has mostly arrived and sent its arrivals
    // while that rank's host has not.
    std::this_thread::sleep_for(std::chrono::milliseconds(rank == slow_rank ? 10 : 2));
  }
  const int64_t failed_at = RealtimeNs();
  std::printf("rank %d: FAILED status=%d at_ns=%lld after %llu barriers: %s\n", rank, status,
              static_cast<long long>(failed_at), static_cast<unsigned long long>(done), aclGetRecentErrMsg());
  std::fflush(stdout);
  if (dead.empty()) std::_Exit(0);  // the group is broken: no orderly goodbye to give
  // Elastic: the survivors go on without the dead ranks, on a fresh stream.
  std::vector<int32_t> info = {1, ranks - static_cast<int>(dead.size()), 0, 0};
  std::vector<int32_t> table2(static_cast<size_t>(ranks), -1);
  int next = 0;
  for (int r = 0; r < ranks; ++r) {
    const bool gone = std::find(dead.begin(), dead.end(), r) != dead.end();
    info.push_back(gone ? -1 : next);
    if (!gone) table2[static_cast<size_t>(next++)] = r;
  }
  info.insert(info.end(), table2.begin(), table2.end());
  Tensor elastic = MakeTensor(ACL_INT32, info);
  aclrtStream fresh = nullptr;
  if (aclrtCreateStream(&fresh) != 0) Fail("aclrtCreateStream");
  for (int k = 0; k < 20; ++k) {
    int again = EnqueueBarrier(x_ref, &elastic, group, ranks, fresh);
    if (again == 0) again = aclrtSynchronizeStream(fresh);
    if (again != 0) Fail("elastic barrier " + std::to_string(k) + " status " + std::to_string(again));
  }
  std::string gone;
  for (int r : dead) gone += (gone.empty() ? "" : ",") + std::to_string(r);
  std::printf("rank %d: ELASTIC OK 20 barriers without ranks %s\n", rank, gone.c_str());
  std::fflush(stdout);
  std::_Exit(0);  // the dead ranks' hosts are gone: no orderly goodbye to give them
}

int Slow(int ranks, int rank, const std::string& workdir, int slow_rank) {
  HcclComm comm = Join(ranks, rank, workdir);
  const std::string group = GroupOf(comm);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  Tensor x_ref = MakeTensor(ACL_FLOAT, {});
  for (int k = 0; k < 30; ++k) {
    if (rank == slow_rank) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the injected lateness
    int status = EnqueueBarrier(x_ref, nullptr, group, ranks, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) Fail("barrier " + std::to_string(k));
  }
  std::vector<distbarrierRankStats> stats(static_cast<size_t>(ranks));
  if (distbarrierGetRankStats(group.c_str(), stats.data(), static_cast<uint32_t>(ranks)) != 0) Fail("stats");
  int slowest = 0;
  for (int r = 1; r < ranks; ++r) {
    if (stats[r].meanLatenessNs > stats[slowest].meanLatenessNs) slowest = r;
  }
  // Leave together: the final barrier's release reaches everyone before anyone goes.
  aclrtDestroyStream(stream);
  HcclCommDestroy(comm);
  aclFinalize();  // joins the stream threads
  std::printf("rank %d: SLOWEST %d (mean lateness %.3f ms, last %llu of 30 times)\n", rank, slowest,
              stats[slowest].meanLatenessNs / 1e6, static_cast<unsigned long long>(stats[slowest].timesLast));
  return 0;
}

int Late(int ranks, int rank, const std::string& workdir, int late_rank) {
  HcclComm comm = Join(ranks, rank, workdir);
  const std::string group = GroupOf(comm);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  Tensor x_ref = MakeTensor(ACL_FLOAT, {});
  for (int k = 0; k < 3; ++k) {
    if (rank == late_rank && k == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the hang
    int status = EnqueueBarrier(x_ref, nullptr, group, ranks, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) Fail("barrier " + std::to_string(k));
  }
  aclrtDestroyStream(stream);
  HcclCommDestroy(comm);
  aclFinalize();  // joins the stream threads
  std::printf("rank %d: OK 3 barriers\n", rank);
  return 0;
}

int Perf(int ranks, int rank, const std::string& workdir, int iterations) {
  HcclComm comm = Join(ranks, rank, workdir);
  const std::string group = GroupOf(comm);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  Tensor x_ref = MakeTensor(ACL_FLOAT, {});
  auto barrier = [&] {
    int status = EnqueueBarrier(x_ref, nullptr, group, ranks, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) Fail("barrier");
  };
  for (int k = 0; k < 200; ++k) barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < iterations; ++k) barrier();
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  barrier();  // nobody leaves while another still measures
  aclrtDestroyStream(stream);
  HcclCommDestroy(comm);
  aclFinalize();  // joins the stream threads
  std::printf("rank %d: PERF %.2f us per barrier\n", rank, us / iterations);
  return 0;
}

int Table(int ranks, int rank, const std::string& workdir, const std::string& ip, int port) {
  std::array<uint8_t, distbarrier::comm::kSecretBytes> secret{};
  for (size_t i = 0; i < secret.size(); ++i)
    secret[i] = static_cast<uint8_t>(i * 13 + 5);  // shared by the table's users
  auto made = distbarrier::comm::CreateRootInfoAt(ip, static_cast<uint16_t>(port), 0x7ab1e, secret);
  if (!std::holds_alternative<HcclRootInfo>(made)) Fail("CreateRootInfoAt: " + std::get<1>(made).message);
  HcclComm comm = nullptr;
  if (distbarrier::api::JoinComm("table", static_cast<uint32_t>(ranks), std::get<HcclRootInfo>(made),
                                 static_cast<uint32_t>(rank), &comm) != HCCL_SUCCESS) {
    Fail("JoinComm");
  }
  const std::string group = GroupOf(comm);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  Tensor x_ref = MakeTensor(ACL_FLOAT, {});
  for (int k = 0; k < 50; ++k) {
    int status = EnqueueBarrier(x_ref, nullptr, group, ranks, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) Fail("barrier " + std::to_string(k));
  }
  aclrtDestroyStream(stream);
  HcclCommDestroy(comm);
  aclFinalize();  // joins the stream threads
  std::printf("rank %d: OK 50 barriers from a rank table (%s)\n", rank, workdir.c_str());
  return 0;
}

int Collectives(int ranks, int rank, const std::string& workdir) {
  namespace hw = distbarrier::testing::hccl;
  HcclComm comm = Join(ranks, rank, workdir);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  std::vector<hw::Case> cases;
  uint64_t salt = 1;
  // AllReduce: SUM and MAX, float and int32, counts 0, 1, odd, 1 MB of floats (several
  // exchanges with the tests' HCCL_BUFFSIZE of 1 MB).
  for (HcclDataType type : {HCCL_DATA_TYPE_FP32, HCCL_DATA_TYPE_INT32}) {
    for (HcclReduceOp op : {HCCL_REDUCE_SUM, HCCL_REDUCE_MAX}) {
      for (uint64_t count : {uint64_t{0}, uint64_t{1}, uint64_t{1001}, uint64_t{1} << 18}) {
        cases.push_back({.kind = hw::Kind::kAllReduce, .type = type, .op = op, .count = count, .salt = salt++});
      }
    }
  }
  const uint32_t last = static_cast<uint32_t>(ranks - 1);  // a root on another host than rank 0's
  for (hw::Kind kind : {hw::Kind::kBroadcast, hw::Kind::kAllGather, hw::Kind::kReduceScatter, hw::Kind::kReduce,
                        hw::Kind::kAlltoAll, hw::Kind::kAlltoAllV, hw::Kind::kAlltoAllVC, hw::Kind::kScatter}) {
    for (uint64_t count : {uint64_t{1}, uint64_t{999}, uint64_t{70001}}) {
      cases.push_back({.kind = kind, .type = HCCL_DATA_TYPE_FP32, .count = count, .root = last, .salt = salt++});
    }
  }
  cases.push_back({.kind = hw::Kind::kAllReduce, .count = 4097, .in_place = true, .salt = salt++});
  const auto start = std::chrono::steady_clock::now();
  for (const hw::Case& c : cases) {
    if (std::string error = hw::RunCase(c, comm, stream); !error.empty()) Fail(error);
  }
  for (uint64_t count : {uint64_t{0}, uint64_t{1}, uint64_t{1001}, uint64_t{300000}}) {
    if (std::string error = hw::RunPointToPoint(comm, stream, HCCL_DATA_TYPE_FP32, count, salt++); !error.empty()) {
      Fail(error);
    }
  }
  if (ranks == 4) {
    // MoE dispatch -> expert -> combine over the same group as EP (TP 1), as moe_process_test.
    namespace moe = distbarrier::testing::moe;
    moe::Config c;
    c.ep = 4;
    c.shared_ranks = 1;
    c.shared_experts = 1;
    c.moe_experts = 6;
    c.k = 3;
    c.mask = true;
    c.seed = 51;
    const moe::RankId r{rank, rank, 0};
    for (int round = 0; round < 2; ++round) {
      const moe::RankInputs in = moe::DrawInputs(c, rank, round);
      moe::RankTensors t(c, in, rank);
      int status = moe::EnqueueDispatch(c, GroupOf(comm), "", r, t, stream);
      if (status == 0) status = aclrtSynchronizeStream(stream);
      if (status != 0) Fail("MoE dispatch " + std::to_string(status));
      moe::ApplyExperts(c, r, t);
      status = moe::EnqueueCombine(c, GroupOf(comm), "", r, t, stream);
      if (status == 0) status = aclrtSynchronizeStream(stream);
      if (status != 0) Fail("MoE combine " + std::to_string(status));
      const moe::Comparison result = moe::Compare(c, in, t, rank);
      if (result.wrong > 0) Fail("MoE: " + std::to_string(result.wrong) + " wrong values; first: " + result.first);
      t.Release();
    }
  }
  // A refused message across hosts: rank 1 sends 10 floats to rank 2, which expects 12; both
  // fail naming the sizes (the refusal goes back to the sender's host before the take).
  if (rank == 1 || rank == 2) {
    aclrtStream own = nullptr;
    if (aclrtCreateStream(&own) != 0) Fail("aclrtCreateStream");
    void* buffer = nullptr;
    if (aclrtMalloc(&buffer, 48, ACL_MEM_MALLOC_HUGE_FIRST) != 0) Fail("aclrtMalloc");
    int status = rank == 1 ? HcclSend(buffer, 10, HCCL_DATA_TYPE_FP32, 2, comm, own)
                           : HcclRecv(buffer, 12, HCCL_DATA_TYPE_FP32, 1, comm, own);
    if (status == 0) status = aclrtSynchronizeStream(own);
    const std::string message = aclGetRecentErrMsg();
    const char* expected = rank == 1 ? "but rank 2 expects 48 bytes" : "but rank 1 sends 40 bytes";
    if (status == 0 || message.find(expected) == std::string::npos) {
      Fail("mismatched send/receive answered " + std::to_string(status) + ": " + message);
    }
    aclrtFree(buffer);
    aclrtDestroyStream(own);
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  // Leave together: nobody destroys its communicator while a peer still reads from it.
  if (HcclBarrier(comm, stream) != HCCL_SUCCESS || aclrtSynchronizeStream(stream) != 0) Fail("final barrier");
  aclrtDestroyStream(stream);
  HcclCommDestroy(comm);
  aclFinalize();  // joins the stream threads
  std::printf("rank %d: OK %zu collectives, 4 send/receive rounds%s in %.1f ms\n", rank, cases.size(),
              ranks == 4 ? " and 2 MoE dispatch/combine rounds" : "", ms);
  return 0;
}

int CollectivesUntilFailure(int ranks, int rank, const std::string& workdir) {
  HcclComm comm = Join(ranks, rank, workdir);
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) Fail("aclrtCreateStream");
  const uint64_t count = 4096;
  void* send = nullptr;
  void* recv = nullptr;
  if (aclrtMalloc(&send, count * 4, ACL_MEM_MALLOC_HUGE_FIRST) != 0 ||
      aclrtMalloc(&recv, count * 4, ACL_MEM_MALLOC_HUGE_FIRST) != 0) {
    Fail("aclrtMalloc");
  }
  std::vector<float> ones(count, 1.0f), got(count);
  aclrtMemcpy(send, count * 4, ones.data(), count * 4, ACL_MEMCPY_HOST_TO_DEVICE);
  std::ofstream(workdir + "/running." + std::to_string(rank)).put('1');
  int status = 0;
  uint64_t done = 0;
  while (true) {
    status = HcclAllReduce(send, recv, count, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) break;
    aclrtMemcpy(got.data(), count * 4, recv, count * 4, ACL_MEMCPY_DEVICE_TO_HOST);
    if (got[0] != static_cast<float>(ranks) || got[count - 1] != static_cast<float>(ranks)) Fail("wrong sum");
    ++done;
    std::this_thread::sleep_for(std::chrono::milliseconds(rank == ranks - 1 ? 5 : 1));  // a steady pace
  }
  std::printf("rank %d: FAILED status=%d at_ns=%lld after %llu allreduces: %s\n", rank, status,
              static_cast<long long>(RealtimeNs()), static_cast<unsigned long long>(done), aclGetRecentErrMsg());
  std::fflush(stdout);
  std::_Exit(0);  // the group is broken: no orderly goodbye to give
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: see the comment at the top of hosts_rank.cc\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int ranks = std::atoi(argv[2]);
  if (mode == "check") return Check(ranks, argv[3], std::atoi(argv[4]));
  rank_id = std::atoi(argv[3]);
  const std::string workdir = argc > 4 ? argv[4] : ".";
  if (aclInit(nullptr) != 0 || aclrtSetDevice(0) != 0) Fail("aclInit/aclrtSetDevice");
  if (mode == "run") return Run(ranks, rank_id, workdir, std::atoi(argv[5]));
  if (mode == "wrong-secret") return WrongSecret(ranks, rank_id, workdir);
  if (mode == "until-failure")
    return UntilFailure(ranks, rank_id, workdir, argc > 5 ? ParseRanks(argv[5]) : std::vector<int>{});
  if (mode == "slow") return Slow(ranks, rank_id, workdir, std::atoi(argv[5]));
  if (mode == "late") return Late(ranks, rank_id, workdir, std::atoi(argv[5]));
  if (mode == "perf") return Perf(ranks, rank_id, workdir, std::atoi(argv[5]));
  if (mode == "collectives") return Collectives(ranks, rank_id, workdir);
  if (mode == "collectives-until-failure") return CollectivesUntilFailure(ranks, rank_id, workdir);
  if (mode == "table") return Table(ranks, rank_id, workdir, argv[5], std::atoi(argv[6]));
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
