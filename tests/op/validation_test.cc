// Every argument check of aclnnDistributeBarrier{,V2}GetWorkspaceSize and of the second
// stage, in the contract's order (contract section 4), plus the vendor's own unit cases.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "op/distribute_barrier/distribute_barrier.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kWorld = 16;

class ValidationTest : public RuntimeTest {
 protected:
  void SetUp() override {
    ASSERT_ACL_OK(aclrtSetDevice(0));
    comms_ = MakeGroup(FirstDevices(kWorld));
    group_ = CommName(comms_[0]);
    x_ref_ = MakeTensor(ACL_FLOAT16, {3, 4});
  }

  int V1(aclTensor* x_ref, const char* group, int64_t world_size) {
    return aclnnDistributeBarrierGetWorkspaceSize(x_ref, group, world_size, &workspace_size_, &executor_);
  }
  int V2(aclTensor* timeout, aclTensor* elastic, int64_t world_size = kWorld) {
    return aclnnDistributeBarrierV2GetWorkspaceSize(x_ref_.tensor, timeout, elastic, group_.c_str(), world_size,
                                                    &workspace_size_, &executor_);
  }
  std::string Message() const { return aclGetRecentErrMsg(); }

  std::vector<HcclComm> comms_;
  std::string group_;
  DeviceTensor x_ref_;
  uint64_t workspace_size_ = 99;
  aclOpExecutor* executor_ = nullptr;
};

// --- vendor unit cases (contract section 8) ---

TEST_F(ValidationTest, test_aclnn_distribute_barrier_first_api_success_fp16_3x4_world16) {
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
  EXPECT_EQ(workspace_size_, 0u);
  EXPECT_NE(executor_, nullptr);
}

TEST_F(ValidationTest, test_aclnn_distribute_barrier_first_api_nullptr_group) {
  EXPECT_EQ(V1(x_ref_.tensor, nullptr, kWorld), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_THAT(Message(), HasSubstr("group is null"));
}

TEST_F(ValidationTest, test_aclnn_distribute_barrier_v2_timeout_int32_1_success) {
  DeviceTensor timeout = MakeInt32Tensor({1000});
  EXPECT_EQ(V2(timeout.tensor, nullptr), ACLNN_SUCCESS) << Message();
}

TEST_F(ValidationTest, test_aclnn_distribute_barrier_v2_elastic_int32_36_world16_success) {
  DeviceTensor elastic = MakeInt32Tensor(std::vector<int32_t>(36, 0));
  EXPECT_EQ(V2(nullptr, elastic.tensor), ACLNN_SUCCESS) << Message();
}

TEST_F(ValidationTest, test_aclnn_distribute_barrier_first_api_world_size_1_and_385_fail) {
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), 1), ACLNN_ERR_INNER_TILING_ERROR);
  EXPECT_THAT(Message(), HasSubstr("worldSize 1 is out of the supported range [2, 384]"));
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), 385), ACLNN_ERR_INNER_TILING_ERROR);
  EXPECT_THAT(Message(), HasSubstr("worldSize 385"));
}

// --- row 1: null pointers -> 161001, naming the parameter ---

TEST_F(ValidationTest, NullXRef) {
  EXPECT_EQ(V1(nullptr, group_.c_str(), kWorld), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_THAT(Message(), HasSubstr("xRef is null"));
  EXPECT_EQ(aclnnDistributeBarrierV2GetWorkspaceSize(nullptr, nullptr, nullptr, group_.c_str(), kWorld,
                                                     &workspace_size_, &executor_),
            ACLNN_ERR_PARAM_NULLPTR);
}

TEST_F(ValidationTest, NullWorkspaceSize) {
  EXPECT_EQ(aclnnDistributeBarrierGetWorkspaceSize(x_ref_.tensor, group_.c_str(), kWorld, nullptr, &executor_),
            ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_THAT(Message(), HasSubstr("workspaceSize is null"));
}

TEST_F(ValidationTest, NullExecutor) {
  EXPECT_EQ(aclnnDistributeBarrierGetWorkspaceSize(x_ref_.tensor, group_.c_str(), kWorld, &workspace_size_, nullptr),
            ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_THAT(Message(), HasSubstr("executor is null"));
}

TEST_F(ValidationTest, NullCheckComesFirst) {
  // Null group together with a bad worldSize and an empty... the null pointer wins.
  EXPECT_EQ(V1(x_ref_.tensor, nullptr, 1), ACLNN_ERR_PARAM_NULLPTR);
}

// --- row 2: worldSize outside [2, 384] -> 561002 ---

TEST_F(ValidationTest, WorldSizeBounds) {
  for (int64_t bad : {int64_t{-1}, int64_t{0}, int64_t{1}, int64_t{385}, int64_t{1} << 40}) {
    EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), bad), ACLNN_ERR_INNER_TILING_ERROR) << bad;
    EXPECT_THAT(Message(), HasSubstr("out of the supported range")) << bad;
  }
  // 2 and 384 are in range: they fail later, on the group's size, not on the range.
  for (int64_t edge : {int64_t{2}, int64_t{384}}) {
    EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), edge), ACLNN_ERR_INNER_TILING_ERROR);
    EXPECT_THAT(Message(), HasSubstr("differs from group")) << edge;
  }
}

// 385 is refused for its range, not because it differs from the group: here the group really
// has 385 ranks (devices), and 384 on a 384-rank group passes.
TEST(ValidationLimitsTest, WorldSize385IsRefusedEvenForAGroupOf385Ranks) {
  setenv("DISTBARRIER_DEVICE_COUNT", "385", 1);  // read when the runtime is first used
  for (int ranks : {384, 385}) {
    std::vector<HcclComm> comms = MakeGroup(FirstDevices(ranks));
    const std::string group = CommName(comms[0]);
    ASSERT_ACL_OK(aclrtSetDevice(0));
    DeviceTensor x_ref = MakeTensor(ACL_FLOAT16, {2});
    uint64_t workspace_size = 0;
    aclOpExecutor* executor = nullptr;
    const aclnnStatus status =
        aclnnDistributeBarrierGetWorkspaceSize(x_ref.tensor, group.c_str(), ranks, &workspace_size, &executor);
    if (ranks == 384) {
      EXPECT_EQ(status, ACLNN_SUCCESS) << aclGetRecentErrMsg();
      EXPECT_EQ(aclDestroyAclOpExecutor(executor), ACLNN_SUCCESS);
    } else {
      EXPECT_EQ(status, ACLNN_ERR_INNER_TILING_ERROR);
      EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("worldSize 385 is out of the supported range [2, 384]"));
    }
  }
  aclFinalize();
}

TEST_F(ValidationTest, WorldSizeCheckedBeforeDtype) {
  DeviceTensor bad = MakeTensor(ACL_DOUBLE, {2});
  EXPECT_EQ(V1(bad.tensor, group_.c_str(), 1), ACLNN_ERR_INNER_TILING_ERROR);
}

// --- row 3: xRef dtype ---

TEST_F(ValidationTest, EverySupportedDtypePasses) {
  for (aclDataType dtype : {ACL_BF16, ACL_FLOAT16, ACL_FLOAT, ACL_BOOL, ACL_INT8, ACL_INT16, ACL_INT32, ACL_INT64,
                            ACL_UINT8, ACL_UINT16, ACL_UINT32, ACL_UINT64}) {
    DeviceTensor tensor = MakeTensor(dtype, {2, 2});
    EXPECT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << dtype << ": " << Message();
  }
}

TEST_F(ValidationTest, UnsupportedDtypeFails) {
  for (aclDataType dtype : {ACL_DOUBLE, ACL_STRING, ACL_COMPLEX64, ACL_COMPLEX128, ACL_DT_UNDEFINED,
                            static_cast<aclDataType>(99)}) {
    DeviceTensor tensor = MakeTensor(dtype, {2});
    EXPECT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID) << dtype;
    EXPECT_THAT(Message(), HasSubstr("xRef dtype")) << dtype;
  }
  DeviceTensor tensor = MakeTensor(ACL_DOUBLE, {2});
  V1(tensor.tensor, group_.c_str(), kWorld);
  EXPECT_THAT(Message(), HasSubstr("DOUBLE (11)"));
}

TEST_F(ValidationTest, StaleXRefHandleFails) {
  DeviceTensor tensor = MakeTensor(ACL_INT32, {2});
  ASSERT_EQ(aclDestroyTensor(tensor.tensor), ACLNN_SUCCESS);
  EXPECT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("not a live aclTensor"));
  EXPECT_EQ(V1(reinterpret_cast<aclTensor*>(0x1234), group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
}

// --- row 4: xRef format / rank ---

TEST_F(ValidationTest, PrivateFormatsFail) {
  for (aclFormat format : {ACL_FORMAT_NC1HWC0, ACL_FORMAT_FRACTAL_Z, ACL_FORMAT_FRACTAL_NZ, ACL_FORMAT_UNDEFINED,
                           static_cast<aclFormat>(12345)}) {
    DeviceTensor tensor = MakeTensor(ACL_FLOAT, {1, 2, 3, 4}, format);
    EXPECT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID) << format;
    EXPECT_THAT(Message(), HasSubstr("xRef format")) << format;
  }
}

// torch_npu passes NCL / NCHW / NCDHW for 3-, 4- and 5-D tensors, and the vendor's op checks
// no xRef format: every origin format passes.
TEST_F(ValidationTest, OriginFormatsPass) {
  struct Case {
    aclFormat format;
    std::vector<int64_t> shape;
  };
  for (const Case& c : {Case{ACL_FORMAT_ND, {2}}, Case{ACL_FORMAT_NC, {2, 3}}, Case{ACL_FORMAT_NCL, {2, 3, 4}},
                        Case{ACL_FORMAT_NCHW, {1, 2, 3, 4}}, Case{ACL_FORMAT_NHWC, {1, 2, 3, 4}},
                        Case{ACL_FORMAT_HWCN, {1, 2, 3, 4}}, Case{ACL_FORMAT_NCDHW, {1, 2, 3, 4, 5}},
                        Case{ACL_FORMAT_NDHWC, {1, 2, 3, 4, 5}}}) {
    DeviceTensor tensor = MakeTensor(ACL_FLOAT16, c.shape, c.format);
    EXPECT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << c.format << ": " << Message();
  }
}

TEST_F(ValidationTest, EightDimsPassNineFail) {
  DeviceTensor eight = MakeTensor(ACL_INT8, {1, 1, 1, 1, 1, 1, 1, 2});
  EXPECT_EQ(V1(eight.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
  DeviceTensor nine = MakeTensor(ACL_INT8, {1, 1, 1, 1, 1, 1, 1, 1, 2});
  EXPECT_EQ(V1(nine.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("9 dims"));
}

TEST_F(ValidationTest, NonContiguousXRefIsFine) {
  int64_t shape[2] = {4, 4};
  int64_t strides[2] = {1, 4};  // transposed view
  aclTensor* view = aclCreateTensor(shape, 2, ACL_FLOAT, strides, 0, ACL_FORMAT_ND, shape, 2, x_ref_.data);
  EXPECT_EQ(V1(view, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
}

TEST_F(ValidationTest, ScalarXRefIsFine) {
  aclTensor* scalar = aclCreateTensor(nullptr, 0, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, nullptr, 0, x_ref_.data);
  ASSERT_NE(scalar, nullptr);
  EXPECT_EQ(V1(scalar, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
}

// --- row 5: group name length ---

TEST_F(ValidationTest, EmptyGroupFails) {
  EXPECT_EQ(V1(x_ref_.tensor, "", kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("group is an empty string"));
}

TEST_F(ValidationTest, GroupOf128BytesFails127IsJustUnknown) {
  std::string long_name(128, 'g');
  EXPECT_EQ(V1(x_ref_.tensor, long_name.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("128 bytes or longer"));
  std::string longer(4096, 'g');
  EXPECT_EQ(V1(x_ref_.tensor, longer.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  std::string longest_ok(127, 'g');
  EXPECT_EQ(V1(x_ref_.tensor, longest_ok.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("not a communicator known"));
}

// --- row 6: group resolution ---

TEST_F(ValidationTest, UnknownGroupFails) {
  EXPECT_EQ(V1(x_ref_.tensor, "no_such_group", kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("'no_such_group' is not a communicator known to this process"));
}

TEST_F(ValidationTest, CurrentDeviceHoldsNoRankFails) {
  std::vector<HcclComm> pair = MakeGroup({4, 5});
  std::string name = CommName(pair[0]);
  EXPECT_EQ(V1(x_ref_.tensor, name.c_str(), 2), ACLNN_ERR_PARAM_INVALID);  // current device is 0
  EXPECT_THAT(Message(), HasSubstr("holds no rank on the current device 0"));
  ASSERT_ACL_OK(aclrtSetDevice(5));
  EXPECT_EQ(V1(x_ref_.tensor, name.c_str(), 2), ACLNN_SUCCESS) << Message();
}

TEST_F(ValidationTest, NoCurrentDeviceFails) {
  int status = -1;
  std::string message;
  std::thread([&] {  // a fresh thread has no current context
    status = V1(x_ref_.tensor, group_.c_str(), kWorld);
    message = aclGetRecentErrMsg();
  }).join();
  EXPECT_EQ(status, ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(message, HasSubstr("no current device"));
}

TEST_F(ValidationTest, DestroyedCommunicatorFails) {
  ASSERT_EQ(HcclCommDestroy(comms_[0]), HCCL_SUCCESS);
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("was destroyed"));
  for (int rank = 1; rank < kWorld; ++rank) ASSERT_EQ(HcclCommDestroy(comms_[rank]), HCCL_SUCCESS);
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("not a communicator known"));
}

// --- stage 1 caches a thread's plan: every answer must still follow every change ---
// (a success is cached per thread; each case first succeeds, then changes what was checked)

TEST_F(ValidationTest, CachedStage1SeesTheXRefDestroyed) {
  DeviceTensor tensor = MakeTensor(ACL_INT32, {2});
  ASSERT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
  ASSERT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
  ASSERT_EQ(aclDestroyTensor(tensor.tensor), ACLNN_SUCCESS);
  EXPECT_EQ(V1(tensor.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("not a live aclTensor"));
}

TEST_F(ValidationTest, CachedStage1SeesTheCommunicatorDestroyed) {
  ASSERT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
  ASSERT_EQ(HcclCommDestroy(comms_[0]), HCCL_SUCCESS);
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("was destroyed"));
}

// The cache holds a plan, and through it the group: once the communicators are destroyed, the
// thread's next stage 1 lets the group go.
TEST_F(ValidationTest, CachedStage1DoesNotKeepADestroyedGroupAlive) {
  ASSERT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
  ASSERT_EQ(aclDestroyAclOpExecutor(executor_), ACLNN_SUCCESS);
  auto found = comm::GroupRegistry::Instance().Find(group_, 0);
  ASSERT_TRUE(std::holds_alternative<comm::Member>(found));
  std::weak_ptr<comm::Group> group = std::get<comm::Member>(found).group;
  found = comm::GroupRegistry::LookupError::kUnknownGroup;
  for (HcclComm comm : comms_) ASSERT_EQ(HcclCommDestroy(comm), HCCL_SUCCESS);
  comms_.clear();
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_ERR_PARAM_INVALID);
  EXPECT_TRUE(group.expired());
}

TEST_F(ValidationTest, CachedStage1FollowsTheCurrentDevice) {
  std::vector<HcclComm> pair = MakeGroup({4, 5});
  const std::string name = CommName(pair[0]);
  ASSERT_ACL_OK(aclrtSetDevice(4));
  ASSERT_EQ(V1(x_ref_.tensor, name.c_str(), 2), ACLNN_SUCCESS) << Message();
  ASSERT_ACL_OK(aclrtSetDevice(6));
  EXPECT_EQ(V1(x_ref_.tensor, name.c_str(), 2), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("holds no rank on the current device 6"));
  // Device 5: rank 1's executor, which a stream of device 4 (rank 0's) refuses at stage 2.
  ASSERT_ACL_OK(aclrtSetDevice(4));
  aclrtStream stream_of_4 = NewStream();
  ASSERT_ACL_OK(aclrtSetDevice(5));
  ASSERT_EQ(V1(x_ref_.tensor, name.c_str(), 2), ACLNN_SUCCESS) << Message();
  EXPECT_EQ(aclnnDistributeBarrier(nullptr, 0, executor_, stream_of_4), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("rank 1 of group '" + name + "' is on device 5"));
}

TEST_F(ValidationTest, CachedStage1FailsInAForkedChild) {
  ASSERT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS) << Message();
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(60);  // a hang ends the child (the parent sees a signal), not the test run
    // The parent's runtime does not exist here, however stage 1 was cached.
    const int status = V1(x_ref_.tensor, group_.c_str(), kWorld);
    const bool told = Message().find("forked after the runtime was initialized") != std::string::npos;
    _exit(status == ACLNN_ERR_PARAM_INVALID && told ? 0 : 1);
  }
  ASSERT_GT(pid, 0);
  int wait_status = 0;
  ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
  EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) << wait_status;
}

// --- row 7: worldSize vs group size ---

TEST_F(ValidationTest, WorldSizeDiffersFromGroupFails) {
  EXPECT_EQ(V1(x_ref_.tensor, group_.c_str(), 8), ACLNN_ERR_INNER_TILING_ERROR);
  EXPECT_THAT(Message(), HasSubstr("worldSize 8 differs from group"));
  EXPECT_THAT(Message(), HasSubstr("rank count 16"));
}

// --- row 8: V2 timeOut ---

TEST_F(ValidationTest, TimeoutWrongDtypeFails) {
  DeviceTensor timeout = MakeTensor(ACL_INT64, {1});
  EXPECT_EQ(V2(timeout.tensor, nullptr), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("timeOut dtype is INT64, expected INT32"));
}

TEST_F(ValidationTest, TimeoutWrongShapeFails) {
  for (std::vector<int64_t> shape : {std::vector<int64_t>{2}, {1, 1}, {}, {0}}) {
    DeviceTensor timeout = MakeTensor(ACL_INT32, shape);
    EXPECT_EQ(V2(timeout.tensor, nullptr), ACLNN_ERR_PARAM_INVALID) << shape.size();
    EXPECT_THAT(Message(), HasSubstr("timeOut shape"));
  }
}

TEST_F(ValidationTest, TimeoutAnyValueIsAcceptedAtFirstStage) {
  // The value is read when the barrier runs; <= 0 means no timeout.
  for (int32_t value : {-5, 0, 1, 1 << 30}) {
    DeviceTensor timeout = MakeInt32Tensor({value});
    EXPECT_EQ(V2(timeout.tensor, nullptr), ACLNN_SUCCESS) << value << Message();
  }
}

// --- row 9: V2 elasticInfo ---

TEST_F(ValidationTest, ElasticWrongDtypeFails) {
  DeviceTensor elastic = MakeTensor(ACL_INT64, {36});
  EXPECT_EQ(V2(nullptr, elastic.tensor), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("elasticInfo dtype"));
}

TEST_F(ValidationTest, ElasticWrongLengthFails) {
  for (int64_t length : {int64_t{35}, int64_t{37}, int64_t{4}, int64_t{20}}) {
    DeviceTensor elastic = MakeTensor(ACL_INT32, {length});
    EXPECT_EQ(V2(nullptr, elastic.tensor), ACLNN_ERR_PARAM_INVALID) << length;
    EXPECT_THAT(Message(), HasSubstr("expected (36) = 4 + 2 * worldSize"));
  }
  DeviceTensor two_d = MakeTensor(ACL_INT32, {6, 6});
  EXPECT_EQ(V2(nullptr, two_d.tensor), ACLNN_ERR_PARAM_INVALID);
}

TEST_F(ValidationTest, TimeoutCheckedBeforeElastic) {
  DeviceTensor timeout = MakeTensor(ACL_FLOAT, {1});
  DeviceTensor elastic = MakeTensor(ACL_FLOAT, {36});
  EXPECT_EQ(V2(timeout.tensor, elastic.tensor), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("timeOut"));
}

// --- V2 tensors must lie inside one live allocation (issue 16.4) ---

// An int32 tensor of `elements` over `data`, with the given stride.
aclTensor* Int32View(void* data, int64_t elements, int64_t stride = 1) {
  return aclCreateTensor(&elements, 1, ACL_INT32, &stride, 0, ACL_FORMAT_ND, &elements, 1, data);
}

// The shape was right but the allocation smaller: the barrier read past its end.
TEST_F(ValidationTest, ElasticOverASmallerAllocationFails) {
  void* small = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&small, 16 * sizeof(int32_t), ACL_MEM_MALLOC_HUGE_FIRST));  // 36 needed
  aclTensor* elastic = Int32View(small, 36);
  EXPECT_EQ(V2(nullptr, elastic), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("elasticInfo bytes"));
  EXPECT_THAT(Message(), HasSubstr("do not lie inside one live allocation"));
  aclDestroyTensor(elastic);
  EXPECT_ACL_OK(aclrtFree(small));
}

TEST_F(ValidationTest, TimeoutOverFreedOrForeignMemoryFails) {
  void* freed = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&freed, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  ASSERT_ACL_OK(aclrtFree(freed));
  aclTensor* timeout = Int32View(freed, 1);
  EXPECT_EQ(V2(timeout, nullptr), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("timeOut bytes"));
  aclDestroyTensor(timeout);
  // Plain host memory the runtime does not know: CANN would not take it either.
  int32_t on_stack = 1000;
  timeout = Int32View(&on_stack, 1);
  EXPECT_EQ(V2(timeout, nullptr), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("timeOut bytes"));
  aclDestroyTensor(timeout);
}

TEST_F(ValidationTest, ElasticInHostMemoryFromMallocHostIsAccepted) {
  void* pinned = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&pinned, 36 * sizeof(int32_t)));
  std::memset(pinned, 0, 36 * sizeof(int32_t));
  aclTensor* elastic = Int32View(pinned, 36);
  EXPECT_EQ(V2(nullptr, elastic), ACLNN_SUCCESS) << Message();
  EXPECT_ACL_OK(aclDestroyAclOpExecutor(executor_));
  aclDestroyTensor(elastic);
  EXPECT_ACL_OK(aclrtFreeHost(pinned));
}

// A strided view was read as if contiguous; it is refused, not read by its strides.
TEST_F(ValidationTest, StridedElasticViewFails) {
  void* big = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&big, 72 * sizeof(int32_t), ACL_MEM_MALLOC_HUGE_FIRST));
  aclTensor* elastic = Int32View(big, 36, 2);
  EXPECT_EQ(V2(nullptr, elastic), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("elasticInfo stride is 2, expected 1"));
  aclDestroyTensor(elastic);
  EXPECT_ACL_OK(aclrtFree(big));
}

// --- second stage ---

class SecondStageTest : public ValidationTest {
 protected:
  void SetUp() override {
    ValidationTest::SetUp();
    ASSERT_ACL_OK(aclrtCreateStream(&stream_));
  }
  aclrtStream stream_ = nullptr;
};

TEST_F(SecondStageTest, NullExecutorFails) {
  EXPECT_EQ(aclnnDistributeBarrier(nullptr, 0, nullptr, stream_), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_EQ(aclnnDistributeBarrierV2(nullptr, 0, nullptr, stream_), ACLNN_ERR_PARAM_NULLPTR);
  EXPECT_THAT(Message(), HasSubstr("executor is null"));
}

TEST_F(SecondStageTest, ExecutorRunTwiceFails) {
  // A 2-rank group whose other rank arrives too, so the first run completes.
  std::vector<HcclComm> pair = MakeGroup({0, 1});
  std::string name = CommName(pair[0]);
  ASSERT_EQ(V1(x_ref_.tensor, name.c_str(), 2), ACLNN_SUCCESS) << Message();
  aclOpExecutor* executor = executor_;
  ASSERT_EQ(aclnnDistributeBarrier(nullptr, 0, executor, stream_), ACLNN_SUCCESS) << Message();
  EXPECT_EQ(aclnnDistributeBarrier(nullptr, 0, executor, stream_), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("already run"));
  RunRanks(2, [&](int rank) {
    if (rank != 1) return;
    aclrtStream stream = NewStream();
    DeviceTensor x = MakeTensor(ACL_INT32, {1});
    ASSERT_EQ(EnqueueBarrier(x.tensor, name, 2, stream), ACLNN_SUCCESS) << aclGetRecentErrMsg();
    EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
  });
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream_));
}

TEST_F(SecondStageTest, DestroyedExecutorFails) {
  ASSERT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS);
  ASSERT_EQ(aclDestroyAclOpExecutor(executor_), ACLNN_SUCCESS);
  EXPECT_EQ(aclnnDistributeBarrier(nullptr, 0, executor_, stream_), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("no longer live"));
  EXPECT_EQ(aclDestroyAclOpExecutor(executor_), ACLNN_ERR_PARAM_INVALID);  // twice
}

TEST_F(SecondStageTest, GarbageExecutorFails) {
  auto* garbage = reinterpret_cast<aclOpExecutor*>(0xdeadbeef);
  EXPECT_EQ(aclnnDistributeBarrier(nullptr, 0, garbage, stream_), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("not an executor"));
}

TEST_F(SecondStageTest, StreamOfAnotherDeviceFails) {
  ASSERT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS);  // rank 0, device 0
  ASSERT_ACL_OK(aclrtSetDevice(3));
  aclrtStream other = NewStream();
  EXPECT_EQ(aclnnDistributeBarrier(nullptr, 0, executor_, other), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("belongs to device 3"));
  // The executor was not consumed by the refused launch.
  EXPECT_EQ(aclDestroyAclOpExecutor(executor_), ACLNN_SUCCESS);
}

TEST_F(SecondStageTest, DestroyedStreamFails) {
  ASSERT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS);
  ASSERT_ACL_OK(aclrtDestroyStream(stream_));
  EXPECT_EQ(aclnnDistributeBarrier(nullptr, 0, executor_, stream_), ACLNN_ERR_PARAM_INVALID);
}

TEST_F(SecondStageTest, ExecutorOfOtherVersionFails) {
  ASSERT_EQ(V1(x_ref_.tensor, group_.c_str(), kWorld), ACLNN_SUCCESS);
  EXPECT_EQ(aclnnDistributeBarrierV2(nullptr, 0, executor_, stream_), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(Message(), HasSubstr("was made by aclnnDistributeBarrierGetWorkspaceSize"));
}

TEST(WorkspaceCheckTest, SmallerThanAskedFails) {
  char buffer[64] = {};
  EXPECT_EQ(op::CheckWorkspace("api", 64, buffer, 63), ACLNN_ERR_PARAM_INVALID);
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("workspaceSize 63 is smaller than the 64 bytes"));
  EXPECT_EQ(op::CheckWorkspace("api", 64, nullptr, 64), ACLNN_ERR_PARAM_INVALID);
  EXPECT_EQ(op::CheckWorkspace("api", 64, buffer, 64), ACLNN_SUCCESS);
  EXPECT_EQ(op::CheckWorkspace("api", 0, nullptr, 0), ACLNN_SUCCESS);
}

TEST_F(ValidationTest, RepeatableExecutorRunsAgain) {
  std::vector<HcclComm> pair = MakeGroup({0, 1});
  std::string name = CommName(pair[0]);
  constexpr int kRuns = 5;
  RunRanks(2, [&](int rank) {
    aclrtStream stream = NewStream();
    DeviceTensor x = MakeTensor(ACL_INT32, {1});
    uint64_t size = 0;
    aclOpExecutor* executor = nullptr;
    ASSERT_EQ(aclnnDistributeBarrierGetWorkspaceSize(x.tensor, name.c_str(), 2, &size, &executor), ACLNN_SUCCESS);
    ASSERT_EQ(aclSetAclOpExecutorRepeatable(executor), ACLNN_SUCCESS);
    for (int i = 0; i < kRuns; ++i) ASSERT_EQ(aclnnDistributeBarrier(nullptr, size, executor, stream), ACLNN_SUCCESS);
    EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
    EXPECT_EQ(aclDestroyAclOpExecutor(executor), ACLNN_SUCCESS);
    EXPECT_EQ(aclnnDistributeBarrier(nullptr, size, executor, stream), ACLNN_ERR_PARAM_INVALID) << rank;
  });
}

}  // namespace
}  // namespace distbarrier::testing
