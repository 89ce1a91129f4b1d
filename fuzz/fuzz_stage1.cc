// Fuzzes the operator's first stage (aclnnDistributeBarrier(V2)GetWorkspaceSize) with random
// tensors, group names, world sizes, timeOut and elasticInfo tensors, and sometimes runs the
// executor it got (second stage + the barrier task, whose elasticInfo/timeOut parsing happens
// at run time) on a real 2-rank group whose other rank runs a matching barrier.
//
// Properties checked (a violation traps):
//  - stage 1 returns 0, 161001, 161002 or 561002 and, on 0, an executor;
//  - stage 2 returns 0, 161001 or 161002; a refused launch leaves the executor live;
//  - a barrier task ends with 0, 507034 (timeout) or 107000 (bad elasticInfo), never hangs
//    (the partner rank always arrives; its own timeout is 2 ms so it never waits for long);
//  - after every input both ranks are at the same barrier sequence number (re-aligned with
//    single-rank elastic barriers when a fuzzed barrier did not arrive), and that works;
//  - no crash, sanitizer report or leak.
#include <fuzzer/FuzzedDataProvider.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "aclnn/aclnn_base.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "aclnnop/aclnn_distribute_barrier_v2.h"
#include "comm/group.h"
#include "fuzz_common.h"
#include "hccl/hccl.h"

namespace {

constexpr int kDevices = 3;        // 0 and 1 hold the group's ranks, 2 holds none
constexpr int kBufferInts = 64;    // data buffer behind every fuzzed tensor
constexpr int32_t kPartnerTimeoutUs = 2000;
constexpr int32_t kSyncLimitMs = 20000;  // a sync that waits this long is a hang

// What the inputs did, printed at exit with FUZZ_STATS=1 (is the run path reached?).
struct Stats {
  uint64_t inputs = 0, stage1_ok = 0, destroyed = 0, launched = 0, refused = 0, task_ok = 0, task_timeout = 0,
           task_bad_elastic = 0, realigned = 0;
  ~Stats() {
    if (std::getenv("FUZZ_STATS") == nullptr) return;
    std::fprintf(stderr,
                 "fuzz_stage1 stats: %llu inputs, stage 1 ok %llu (destroyed %llu), launches %llu ok / %llu refused, "
                 "barrier tasks: %llu ok, %llu timed out, %llu bad elasticInfo; realigning barriers %llu\n",
                 (unsigned long long)inputs, (unsigned long long)stage1_ok, (unsigned long long)destroyed,
                 (unsigned long long)launched, (unsigned long long)refused, (unsigned long long)task_ok,
                 (unsigned long long)task_timeout, (unsigned long long)task_bad_elastic, (unsigned long long)realigned);
  }
} g_stats;

HcclComm g_comms[2];
std::string g_group;
aclrtContext g_context[kDevices];
aclrtStream g_stream[2];
bool g_default_stream_failed[2];

void UseDevice(int device) { FUZZ_CHECK(aclrtSetCurrentContext(g_context[device]) == ACL_SUCCESS, "set context %d", device); }

// A stream's worker thread starts with its first task and, after aclrtDestroyStream, exits on
// its own a little later. LeakSanitizer's check after each input skips a thread that is starting
// or exiting (it is not in the sanitizer's thread registry then), so what only that thread
// points to -- the record of a thread_local's destructor (32 bytes from
// __cxa_thread_atexit_impl), the thread's attributes -- is reported as leaked (issue 16.25,
// fuzz/regressions/stage1-thread-in-transition-leak). So no worker is left in transition when
// an input ends: a stream's worker is started (and its thread id learnt) when the stream is
// made, and a destroyed stream's worker is waited for until it is gone.
pid_t g_worker[2];

void RecordThreadId(void* tid) {
  *static_cast<pid_t*>(tid) = gettid();
}

// Runs a no-op host function on `stream` (null: the current context's default stream): its
// worker is then running; returns the worker's thread id.
pid_t StartWorker(aclrtStream stream) {
  pid_t tid = 0;
  FUZZ_CHECK(aclrtLaunchHostFunc(stream, RecordThreadId, &tid) == ACL_SUCCESS, "launch host function");
  FUZZ_CHECK(aclrtSynchronizeStream(stream) == ACL_SUCCESS && tid > 0, "start worker");
  return tid;
}

void AwaitThreadGone(pid_t tid) {
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  const auto limit = std::chrono::steady_clock::now() + std::chrono::milliseconds(kSyncLimitMs);
  while (access(task.c_str(), F_OK) == 0) {
    FUZZ_CHECK(std::chrono::steady_clock::now() < limit, "worker %d of a destroyed stream still runs", tid);
    sched_yield();
  }
}

aclrtStream NewStream(int device, pid_t* worker) {
  UseDevice(device);
  aclrtStream stream = nullptr;
  FUZZ_CHECK(aclrtCreateStream(&stream) == ACL_SUCCESS, "create stream on %d", device);
  *worker = StartWorker(stream);
  return stream;
}

void RenewStream(int rank) {
  FUZZ_CHECK(aclrtDestroyStream(g_stream[rank]) == ACL_SUCCESS, "destroy stream");
  AwaitThreadGone(g_worker[rank]);
  g_stream[rank] = NewStream(rank, &g_worker[rank]);
}

// Host memory from aclrtMallocHost, zeroed: stage 1 takes timeOut and elasticInfo only over
// memory the runtime allocated.
struct FreeHostInts {
  void operator()(int32_t* ints) const { aclrtFreeHost(ints); }
};
using HostInts = std::unique_ptr<int32_t[], FreeHostInts>;

HostInts NewHostInts(size_t count) {
  void* memory = nullptr;
  FUZZ_CHECK(aclrtMallocHost(&memory, count * sizeof(int32_t)) == ACL_SUCCESS, "aclrtMallocHost");
  std::memset(memory, 0, count * sizeof(int32_t));
  return HostInts(static_cast<int32_t*>(memory));
}

// An owned int32 tensor over a buffer of ours: the partner's timeOut, the realigning elasticInfo.
struct FixedTensor {
  HostInts data;
  aclTensor* tensor = nullptr;
  explicit FixedTensor(const std::vector<int32_t>& values) : data(NewHostInts(values.size())) {
    std::memcpy(data.get(), values.data(), values.size() * sizeof(int32_t));
    int64_t n = static_cast<int64_t>(values.size()), stride = 1;
    tensor = aclCreateTensor(&n, 1, ACL_INT32, &stride, 0, ACL_FORMAT_ND, &n, 1, data.get());
    FUZZ_CHECK(tensor != nullptr, "aclCreateTensor");
  }
  ~FixedTensor() { FUZZ_CHECK(aclDestroyTensor(tensor) == ACLNN_SUCCESS, "aclDestroyTensor"); }
};

FixedTensor* g_x_ref;  // a well-formed xRef for the partner's and the realigning barriers

uint64_t ArrivedSequence(int rank) {
  auto found = distbarrier::comm::GroupRegistry::Instance().Find(g_group, rank);
  auto* member = std::get_if<distbarrier::comm::Member>(&found);
  FUZZ_CHECK(member != nullptr, "group lookup");
  return member->group->Window().ArrivedSequence(rank);
}

aclError SyncOrTrap(aclrtStream stream, const char* what) {
  aclError status = aclrtSynchronizeStreamWithTimeout(stream, kSyncLimitMs);
  FUZZ_CHECK(status != ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, "%s: barrier hangs (> %d ms)", what, kSyncLimitMs);
  return status;
}

// One V2 barrier of `rank` on its stream with the given timeOut/elasticInfo; returns the sync status.
aclError RunFixedBarrier(int rank, aclTensor* x_ref, aclTensor* timeout, aclTensor* elastic) {
  UseDevice(rank);
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  aclnnStatus status = aclnnDistributeBarrierV2GetWorkspaceSize(x_ref, timeout, elastic, g_group.c_str(), 2,
                                                                &workspace_size, &executor);
  FUZZ_CHECK(status == ACLNN_SUCCESS, "fixed barrier stage 1: %d", status);
  status = aclnnDistributeBarrierV2(nullptr, workspace_size, executor, g_stream[rank]);
  FUZZ_CHECK(status == ACLNN_SUCCESS, "fixed barrier stage 2: %d", status);
  return SyncOrTrap(g_stream[rank], "fixed barrier");
}

// Brings both ranks to the same sequence number: the one behind runs barriers alone
// (elastic, the other rank excluded) until it caught up.
void Realign(aclTensor* x_ref) {
  for (int round = 0; round < 8; ++round) {
    const uint64_t seq0 = ArrivedSequence(0), seq1 = ArrivedSequence(1);
    if (seq0 == seq1) return;
    const int behind = seq0 < seq1 ? 0 : 1;
    std::vector<int32_t> info{1, 1, 0, 0, -1, -1, -1, -1};
    info[4 + behind] = 0;
    info[6] = behind;  // table2: localRank 0 -> epRank `behind`
    FixedTensor elastic(info);
    aclError status = RunFixedBarrier(behind, x_ref, nullptr, elastic.tensor);
    FUZZ_CHECK(status == ACL_SUCCESS, "realigning barrier of rank %d: %d", behind, status);
    ++g_stats.realigned;
  }
  FUZZ_CHECK(ArrivedSequence(0) == ArrivedSequence(1), "ranks not realigned: %llu vs %llu",
             static_cast<unsigned long long>(ArrivedSequence(0)), static_cast<unsigned long long>(ArrivedSequence(1)));
}

aclDataType PickDtype(FuzzedDataProvider& in, aclDataType usual) {
  static constexpr int kInteresting[] = {ACL_FLOAT, ACL_FLOAT16, ACL_INT8,   ACL_INT32,     ACL_UINT8,
                                         ACL_INT16, ACL_UINT16,  ACL_UINT32, ACL_INT64,     ACL_UINT64,
                                         ACL_DOUBLE, ACL_BOOL,   ACL_STRING, ACL_COMPLEX64, ACL_COMPLEX128,
                                         ACL_BF16,  ACL_DT_UNDEFINED, 5, 14, 28, 1000};
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: return usual;
    case 1:
    case 2: return static_cast<aclDataType>(in.PickValueInArray(kInteresting));
    default: return static_cast<aclDataType>(in.ConsumeIntegral<int32_t>());
  }
}

int64_t PickDim(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: return in.ConsumeIntegralInRange<int64_t>(-2, 16);
    case 1: return in.ConsumeIntegralInRange<int64_t>(0, 1000);
    case 2: return in.PickValueInArray<int64_t>({0, 1, 8, 36, INT64_MAX, INT64_MIN, -1, INT32_MAX, 1LL << 32});
    default: return in.ConsumeIntegral<int64_t>();
  }
}

// A fuzzed tensor and the memory behind it.
struct FuzzTensor {
  HostInts data;
  aclTensor* tensor = nullptr;
  bool runnable = false;  // data is ours and the view's first element lies well inside it
  ~FuzzTensor() {
    if (tensor != nullptr) FUZZ_CHECK(aclDestroyTensor(tensor) == ACLNN_SUCCESS, "aclDestroyTensor");
  }
};

// usual_len < 0: no usual 1-D shape (xRef: random small shape).
void MakeFuzzTensor(FuzzedDataProvider& in, aclDataType usual_dtype, int64_t usual_len, bool elastic_values,
                    FuzzTensor* out) {
  out->data = NewHostInts(kBufferInts);
  // Values: plausible elasticInfo/timeOut contents most of the time, raw ints otherwise.
  const int filled = in.ConsumeIntegralInRange(0, 12);
  for (int i = 0; i < filled; ++i) {
    if (elastic_values && in.ConsumeBool()) {
      out->data[i] = in.ConsumeIntegralInRange<int32_t>(-2, 3);
    } else {
      out->data[i] = in.PickValueInArray<int32_t>({0, 1, -1, 500, 1000, 1000000, INT32_MAX, INT32_MIN}) ^
                     (in.ConsumeBool() ? 0 : in.ConsumeIntegral<int32_t>());
    }
  }
  std::vector<int64_t> dims, strides, storage;
  aclDataType dtype = usual_dtype;
  aclFormat format = ACL_FORMAT_ND;
  int64_t offset = 0;
  void* data = out->data.get();
  bool null_strides = false;
  if (usual_len >= 0 && in.ConsumeIntegralInRange(0, 3) != 0) {
    dims = {usual_len};
  } else {
    const int ndims = in.ConsumeIntegralInRange(0, 10);
    for (int i = 0; i < ndims; ++i) dims.push_back(PickDim(in));
  }
  if (in.ConsumeIntegralInRange(0, 3) == 0) {  // the rest fuzzed
    dtype = PickDtype(in, usual_dtype);
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0: format = static_cast<aclFormat>(in.ConsumeIntegral<int32_t>()); break;
      case 1: format = static_cast<aclFormat>(in.ConsumeIntegralInRange(-1, 30)); break;
      default: break;
    }
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0: offset = in.ConsumeIntegral<int64_t>(); break;
      case 1: offset = in.ConsumeIntegralInRange<int64_t>(-4, 60); break;
      default: break;
    }
    if (in.ConsumeIntegralInRange(0, 7) == 0) data = nullptr;
    null_strides = in.ConsumeBool();
    for (size_t i = 0; i < dims.size(); ++i) strides.push_back(in.ConsumeBool() ? 1 : PickDim(in));
    const int nstorage = in.ConsumeIntegralInRange(0, 10);
    for (int i = 0; i < nstorage; ++i) storage.push_back(PickDim(in));
  } else {
    int64_t stride = 1;
    strides.assign(dims.size(), 0);
    for (size_t i = dims.size(); i-- > 0;) {
      strides[i] = stride;
      if (__builtin_mul_overflow(stride, dims[i] > 0 ? dims[i] : 1, &stride)) stride = 1;
    }
    storage = dims;
  }
  out->runnable = data != nullptr && offset >= 0 && offset <= kBufferInts - 8;
  out->tensor = aclCreateTensor(dims.empty() ? nullptr : dims.data(), dims.size(), dtype,
                                null_strides ? nullptr : (strides.empty() ? nullptr : strides.data()), offset, format,
                                storage.empty() ? nullptr : storage.data(), storage.size(), data);
}

// The group argument in a buffer of exactly the size it needs, so an over-read is seen.
std::unique_ptr<char[]> MakeGroupName(FuzzedDataProvider& in, bool* is_null) {
  *is_null = false;
  std::string text;
  bool terminated = true;
  switch (in.ConsumeIntegralInRange(0, 9)) {
    case 0: *is_null = true; return nullptr;
    case 1: text = ""; break;
    case 2: {  // the real name, mutated
      text = g_group;
      const size_t at = in.ConsumeIntegralInRange<size_t>(0, text.size());
      switch (in.ConsumeIntegralInRange(0, 2)) {
        case 0: text.resize(at); break;
        case 1: text.insert(at, in.ConsumeBytesAsString(in.ConsumeIntegralInRange(1, 4))); break;
        default: if (at < text.size()) text[at] = static_cast<char>(in.ConsumeIntegral<uint8_t>()); break;
      }
      break;
    }
    case 3: text = in.ConsumeRandomLengthString(300); break;
    case 4: {  // unterminated: at least 128 bytes so the library's bounded scan stays inside
      text = in.ConsumeRandomLengthString(300);
      if (text.size() < 128) text.append(128 - text.size(), 'g');
      terminated = false;
      break;
    }
    case 5: text = std::string(in.ConsumeIntegralInRange(120, 140), 'x'); break;
    default: text = g_group; break;
  }
  auto buffer = std::make_unique<char[]>(text.size() + (terminated ? 1 : 0));
  std::memcpy(buffer.get(), text.data(), text.size());
  if (terminated) buffer[text.size()] = '\0';
  return buffer;
}

bool StageOneStatusOk(aclnnStatus status) {
  return status == ACLNN_SUCCESS || status == ACLNN_ERR_PARAM_NULLPTR || status == ACLNN_ERR_PARAM_INVALID ||
         status == ACLNN_ERR_INNER_TILING_ERROR;
}

// Runs the fuzzed executor of `rank` and a matching barrier of the other rank.
void RunExecutor(FuzzedDataProvider& in, int rank, bool v2, aclOpExecutor* executor, aclTensor* partner_x) {
  const int partner = 1 - rank;
  const bool repeatable = in.ConsumeIntegralInRange(0, 3) == 0;
  if (repeatable) FUZZ_CHECK(aclSetAclOpExecutorRepeatable(executor) == ACLNN_SUCCESS, "repeatable");

  // The partner's executor first: the order of the two launches is fuzzed.
  FixedTensor partner_timeout({kPartnerTimeoutUs});
  UseDevice(partner);
  uint64_t partner_ws = 0;
  aclOpExecutor* partner_exec = nullptr;
  FUZZ_CHECK(aclnnDistributeBarrierV2GetWorkspaceSize(partner_x, partner_timeout.tensor, nullptr, g_group.c_str(), 2,
                                                      &partner_ws, &partner_exec) == ACLNN_SUCCESS,
             "partner stage 1");
  const bool partner_first = in.ConsumeBool();
  if (partner_first) {
    FUZZ_CHECK(aclnnDistributeBarrierV2(nullptr, partner_ws, partner_exec, g_stream[partner]) == ACLNN_SUCCESS,
               "partner stage 2");
  }

  UseDevice(rank);
  enum { kOwn, kDefault, kOther, kBogus, kWrongVersion } how = kOwn;
  switch (in.ConsumeIntegralInRange(0, 9)) {
    case 0: how = g_default_stream_failed[rank] ? kOwn : kDefault; break;
    case 1: how = kOther; break;
    case 2: how = kBogus; break;
    case 3: how = kWrongVersion; break;
    default: break;
  }
  aclrtStream stream = how == kDefault ? nullptr
                       : how == kOther ? g_stream[partner]
                       : how == kBogus ? reinterpret_cast<aclrtStream>(in.ConsumeIntegral<uintptr_t>())
                                       : g_stream[rank];
  char workspace_bytes[16];
  void* workspace = in.ConsumeBool() ? nullptr : workspace_bytes;
  const uint64_t workspace_size = in.ConsumeBool() ? 0 : in.ConsumeIntegral<uint64_t>();
  const bool launch_v2 = how == kWrongVersion ? !v2 : v2;
  aclnnStatus status = launch_v2 ? aclnnDistributeBarrierV2(workspace, workspace_size, executor, stream)
                                 : aclnnDistributeBarrier(workspace, workspace_size, executor, stream);
  FUZZ_CHECK(status == ACLNN_SUCCESS || status == ACLNN_ERR_PARAM_INVALID || status == ACLNN_ERR_PARAM_NULLPTR,
             "stage 2 returned %d", status);
  if (how == kOther || how == kWrongVersion) FUZZ_CHECK(status == ACLNN_ERR_PARAM_INVALID, "misuse accepted: %d", status);
  const bool launched = status == ACLNN_SUCCESS;
  ++(launched ? g_stats.launched : g_stats.refused);
  if (!launched || repeatable) {
    // A refused launch does not consume the executor; a repeatable one lives until destroyed.
    FUZZ_CHECK(aclDestroyAclOpExecutor(executor) == ACLNN_SUCCESS, "executor not live after launch %d", status);
  }
  if (!partner_first) {
    if (launched) {
      UseDevice(partner);
      FUZZ_CHECK(aclnnDistributeBarrierV2(nullptr, partner_ws, partner_exec, g_stream[partner]) == ACLNN_SUCCESS,
                 "partner stage 2");
    } else {
      FUZZ_CHECK(aclDestroyAclOpExecutor(partner_exec) == ACLNN_SUCCESS, "partner executor");
    }
  }

  if (launched) {
    UseDevice(rank);
    const aclError mine = SyncOrTrap(stream, "fuzzed barrier");
    FUZZ_CHECK(mine == ACL_SUCCESS || mine == ACL_ERROR_RT_VECTOR_CORE_TIMEOUT || mine == ACL_ERROR_RT_PARAM_INVALID,
               "fuzzed barrier task ended with %d", mine);
    ++(mine == ACL_SUCCESS ? g_stats.task_ok
       : mine == ACL_ERROR_RT_VECTOR_CORE_TIMEOUT ? g_stats.task_timeout
                                                  : g_stats.task_bad_elastic);
    if (mine != ACL_SUCCESS) {
      if (how == kDefault) {
        g_default_stream_failed[rank] = true;  // the default stream stays failed; not used again
      } else {
        RenewStream(rank);
      }
    }
  }
  if (launched || partner_first) {
    UseDevice(partner);
    const aclError theirs = SyncOrTrap(g_stream[partner], "partner barrier");
    FUZZ_CHECK(theirs == ACL_SUCCESS || theirs == ACL_ERROR_RT_VECTOR_CORE_TIMEOUT, "partner ended with %d", theirs);
    if (theirs != ACL_SUCCESS) RenewStream(partner);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("DISTBARRIER_DEVICE_COUNT", "3", 1);
  setenv("DISTBARRIER_LOG_LEVEL", "4", 1);  // refusals and timeouts are expected: keep the output quiet
  unsetenv("DISTBARRIER_TIMEOUT_MS");
  unsetenv("DISTBARRIER_TRACE");
  for (int device = kDevices - 1; device >= 0; --device) {
    FUZZ_CHECK(aclrtSetDevice(device) == ACL_SUCCESS, "aclrtSetDevice(%d)", device);
    FUZZ_CHECK(aclrtGetCurrentContext(&g_context[device]) == ACL_SUCCESS, "context");
  }
  int32_t devices[2] = {0, 1};
  FUZZ_CHECK(HcclCommInitAll(2, devices, g_comms) == HCCL_SUCCESS, "HcclCommInitAll");
  char name[COMM_NAME_MAX_LENGTH] = {0};
  FUZZ_CHECK(HcclGetCommName(g_comms[0], name) == HCCL_SUCCESS, "name");
  g_group = name;
  for (int rank = 0; rank < 2; ++rank) {
    g_stream[rank] = NewStream(rank, &g_worker[rank]);
    StartWorker(nullptr);  // the default stream's worker too (it is never destroyed)
  }
  g_x_ref = new FixedTensor({0});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  FuzzedDataProvider in(bytes, size);
  ++g_stats.inputs;
  const int device = in.PickValueInArray({0, 0, 0, 1, 1, 1, 2});
  const bool v2 = in.ConsumeBool();

  FuzzTensor x_ref, timeout, elastic;
  const bool x_null = in.ConsumeIntegralInRange(0, 15) == 0;
  if (!x_null) MakeFuzzTensor(in, ACL_FLOAT16, -1, false, &x_ref);

  bool group_null = false;
  std::unique_ptr<char[]> group = MakeGroupName(in, &group_null);

  int64_t world_size = 2;
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: world_size = in.ConsumeIntegral<int64_t>(); break;
    case 1: world_size = in.ConsumeIntegralInRange<int64_t>(-2, 400); break;
    case 2: world_size = in.PickValueInArray<int64_t>({0, 1, 3, 16, 384, 385, INT64_MIN, INT64_MAX}); break;
    default: break;
  }
  const int64_t elastic_len = world_size >= 2 && world_size <= 20 ? 4 + 2 * world_size : 8;
  if (v2) {
    if (in.ConsumeBool()) MakeFuzzTensor(in, ACL_INT32, 1, false, &timeout);
    if (in.ConsumeBool()) MakeFuzzTensor(in, ACL_INT32, elastic_len, true, &elastic);
  }
  const bool null_ws = in.ConsumeIntegralInRange(0, 19) == 0;
  const bool null_exec = in.ConsumeIntegralInRange(0, 19) == 0;
  const int action = in.ConsumeIntegralInRange(0, 2);  // 0 destroy, else run when possible

  UseDevice(device);
  uint64_t workspace_size = 12345;
  aclOpExecutor* executor = nullptr;
  aclnnStatus status =
      v2 ? aclnnDistributeBarrierV2GetWorkspaceSize(x_ref.tensor, timeout.tensor, elastic.tensor, group.get(),
                                                    world_size, null_ws ? nullptr : &workspace_size,
                                                    null_exec ? nullptr : &executor)
         : aclnnDistributeBarrierGetWorkspaceSize(x_ref.tensor, group.get(), world_size,
                                                  null_ws ? nullptr : &workspace_size, null_exec ? nullptr : &executor);
  FUZZ_CHECK(StageOneStatusOk(status), "stage 1 returned %d", status);
  if (x_null || group_null || null_ws || null_exec) {
    FUZZ_CHECK(status == ACLNN_ERR_PARAM_NULLPTR, "null argument answered %d", status);
  }
  if (status != ACLNN_SUCCESS) {
    FUZZ_CHECK(executor == nullptr, "failed stage 1 gave an executor");
    FUZZ_CHECK(std::strlen(aclGetRecentErrMsg()) > 0, "failed stage 1 left no message");
    return 0;
  }
  FUZZ_CHECK(executor != nullptr && workspace_size == 0, "success without executor");
  ++g_stats.stage1_ok;
  FUZZ_CHECK(device != 2 && world_size == 2, "accepted device %d worldSize %lld", device,
             static_cast<long long>(world_size));

  const bool runnable = (timeout.tensor == nullptr || timeout.runnable) && (elastic.tensor == nullptr || elastic.runnable);
  if (action == 0 || !runnable) {
    ++g_stats.destroyed;
    FUZZ_CHECK(aclDestroyAclOpExecutor(executor) == ACLNN_SUCCESS, "destroy");
    FUZZ_CHECK(aclDestroyAclOpExecutor(executor) == ACLNN_ERR_PARAM_INVALID, "double destroy accepted");
    return 0;
  }
  RunExecutor(in, device, v2, executor, g_x_ref->tensor);
  Realign(g_x_ref->tensor);
  return 0;
}
