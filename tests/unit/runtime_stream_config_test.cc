// Streams made with a configuration and their getters, and the device queries of CANN's runtime
// examples, through the public C API, with their error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "acl/acl.h"
#include "unit/runtime_fixture.h"

namespace distbarrier::testing {
namespace {

class StreamConfigTest : public StreamTest {
 protected:
  void SetUp() override { ASSERT_ACL_OK(aclrtSetDevice(0)); }
};

TEST_F(StreamConfigTest, ConfigHandleMakesAStreamThatReportsItsPriorityAndFlags) {
  aclrtStreamConfigHandle* config = aclrtCreateStreamConfigHandle();
  ASSERT_NE(config, nullptr);
  const uint32_t priority = 5;
  const size_t flags = ACL_STREAM_FAST_LAUNCH | ACL_STREAM_HUGE;
  ASSERT_ACL_OK(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_PRIORITY, &priority, sizeof(priority)));
  ASSERT_ACL_OK(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_FLAG, &flags, sizeof(flags)));
  aclrtStream stream = nullptr;
  ASSERT_ACL_OK(aclrtCreateStreamV2(&stream, config));
  ASSERT_ACL_OK(aclrtDestroyStreamConfigHandle(config));
  uint32_t got_priority = 99;
  uint32_t got_flags = 99;
  ASSERT_ACL_OK(aclrtStreamGetPriority(stream, &got_priority));
  ASSERT_ACL_OK(aclrtStreamGetFlags(stream, &got_flags));
  EXPECT_EQ(got_priority, priority);
  EXPECT_EQ(got_flags, flags);
  // The stream runs tasks like any other.
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(ran.load());
  ASSERT_ACL_OK(aclrtDestroyStream(stream));
}

TEST_F(StreamConfigTest, FlagMayBeGivenAsUint32AsCannsExampleDoes) {
  aclrtStreamConfigHandle* config = aclrtCreateStreamConfigHandle();
  ASSERT_NE(config, nullptr);
  const uint32_t flags = ACL_STREAM_FAST_SYNC;
  ASSERT_ACL_OK(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_FLAG, &flags, sizeof(flags)));
  EXPECT_EQ(config->flag, size_t{ACL_STREAM_FAST_SYNC});
  EXPECT_EQ(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_FLAG, &flags, 2), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtDestroyStreamConfigHandle(config));
}

TEST_F(StreamConfigTest, StreamWithConfigAndPlainStreamsHaveDistinctIds) {
  aclrtStream configured = nullptr;
  ASSERT_ACL_OK(aclrtCreateStreamWithConfig(&configured, 7, ACL_STREAM_PERSISTENT | 0x80000000u));
  uint32_t flags = 0;
  ASSERT_ACL_OK(aclrtStreamGetFlags(configured, &flags));
  EXPECT_EQ(flags, ACL_STREAM_PERSISTENT);  // unknown bits dropped
  aclrtStream plain = NewStream();
  uint32_t priority = 99;
  ASSERT_ACL_OK(aclrtStreamGetPriority(plain, &priority));
  EXPECT_EQ(priority, 0u);
  std::set<int32_t> ids;
  for (aclrtStream stream : {configured, plain, static_cast<aclrtStream>(nullptr)}) {  // null: the default stream
    int32_t id = -1;
    ASSERT_ACL_OK(aclrtStreamGetId(stream, &id));
    EXPECT_GE(id, 0);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 3u);
  ASSERT_ACL_OK(aclrtDestroyStream(configured));
}

TEST_F(StreamConfigTest, BadArgumentsFail) {
  aclrtStream stream = nullptr;
  EXPECT_EQ(aclrtCreateStreamWithConfig(&stream, 8, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtCreateStreamWithConfig(nullptr, 0, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtCreateStreamV2(nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  aclrtStreamConfigHandle* config = aclrtCreateStreamConfigHandle();
  ASSERT_NE(config, nullptr);
  const uint32_t too_low = 8;
  EXPECT_EQ(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_PRIORITY, &too_low, sizeof(too_low)),
            ACL_ERROR_INVALID_PARAM);
  const uint64_t wide = 1;
  EXPECT_EQ(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_PRIORITY, &wide, sizeof(wide)), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_WORK_SIZE, &too_low, sizeof(too_low)),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtSetStreamConfigOpt(config, static_cast<aclrtStreamConfigAttr>(4), &wide, sizeof(wide)),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtSetStreamConfigOpt(nullptr, ACL_RT_STREAM_PRIORITY, &too_low, sizeof(too_low)),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtSetStreamConfigOpt(config, ACL_RT_STREAM_PRIORITY, nullptr, 4), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtDestroyStreamConfigHandle(config));
  EXPECT_EQ(aclrtDestroyStreamConfigHandle(nullptr), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtCreateStreamV2(&stream, nullptr));  // null config: a plain stream
  int32_t id = 0;
  uint32_t value = 0;
  EXPECT_EQ(aclrtStreamGetId(stream, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtStreamGetFlags(stream, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtStreamGetPriority(stream, nullptr), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtDestroyStream(stream));
  EXPECT_EQ(aclrtStreamGetId(stream, &id), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtStreamGetFlags(stream, &value), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtStreamGetPriority(stream, &value), ACL_ERROR_RT_INVALID_HANDLE);
}

// --- device queries ---

TEST_F(StreamConfigTest, ErrorVerboseReportsNoHardwareError) {
  aclrtErrorInfo info{};
  info.errorType = ACL_RT_ERROR_OTHERS;
  info.tryRepair = 1;
  ASSERT_ACL_OK(aclrtGetErrorVerbose(0, &info));
  EXPECT_EQ(info.errorType, ACL_RT_NO_ERROR);
  EXPECT_EQ(info.tryRepair, 0);
  EXPECT_EQ(info.hasDetail, 0);
  EXPECT_EQ(aclrtGetErrorVerbose(0, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtGetErrorVerbose(-1, &info), ACL_ERROR_RT_INVALID_DEVICEID);
}

TEST_F(StreamConfigTest, DeviceCapabilityAndArchCompatibility) {
  int32_t value = -1;
  ASSERT_ACL_OK(aclrtGetDeviceCapability(0, ACL_FEATURE_TSCPU_TASK_UPDATE_SUPPORT_AIC_AIV, &value));
  EXPECT_EQ(value, 0);
  EXPECT_EQ(aclrtGetDeviceCapability(0, static_cast<aclrtDevFeatureType>(2), &value), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtGetDeviceCapability(1 << 20, ACL_FEATURE_TSCPU_TASK_UPDATE_SUPPORT_AIC_AIV, &value),
            ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtGetDeviceCapability(0, ACL_FEATURE_TSCPU_TASK_UPDATE_SUPPORT_AIC_AIV, nullptr),
            ACL_ERROR_INVALID_PARAM);
  int32_t compatible = -1;
  ASSERT_ACL_OK(aclrtCheckArchCompatibility(aclrtGetSocName(), &compatible));
  EXPECT_EQ(compatible, 1);
  ASSERT_ACL_OK(aclrtCheckArchCompatibility("Ascend310P3", &compatible));
  EXPECT_EQ(compatible, 0);
  EXPECT_EQ(aclrtCheckArchCompatibility(nullptr, &compatible), ACL_ERROR_INVALID_PARAM);
}

TEST_F(StreamConfigTest, ResInCurrentThreadNeedsAContext) {
  uint32_t cube = 0;
  uint32_t vector = 0;
  ASSERT_ACL_OK(aclrtGetResInCurrentThread(ACL_RT_DEV_RES_CUBE_CORE, &cube));
  ASSERT_ACL_OK(aclrtGetResInCurrentThread(ACL_RT_DEV_RES_VECTOR_CORE, &vector));
  EXPECT_EQ(cube, 24u);
  EXPECT_EQ(vector, 48u);
  EXPECT_EQ(aclrtGetResInCurrentThread(static_cast<aclrtDevResLimitType>(2), &cube), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtGetResInCurrentThread(ACL_RT_DEV_RES_CUBE_CORE, nullptr), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtResetDeviceForce(0));
  EXPECT_NE(aclrtGetResInCurrentThread(ACL_RT_DEV_RES_CUBE_CORE, &cube), ACL_SUCCESS);
}

TEST_F(StreamConfigTest, CannAttributes) {
  const aclCannAttr* list = nullptr;
  size_t count = 0;
  ASSERT_ACL_OK(aclGetCannAttributeList(&list, &count));
  ASSERT_EQ(count, 2u);
  for (size_t i = 0; i < count; ++i) {
    int32_t value = 0;
    ASSERT_ACL_OK(aclGetCannAttribute(list[i], &value));
    EXPECT_EQ(value, 1) << list[i];
  }
  int32_t jit = -1;
  ASSERT_ACL_OK(aclGetCannAttribute(ACL_CANN_ATTR_JIT_COMPILE, &jit));
  EXPECT_EQ(jit, 0);
  EXPECT_EQ(aclGetCannAttribute(ACL_CANN_ATTR_UNDEFINED, &jit), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclGetCannAttribute(ACL_CANN_ATTR_BF16, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclGetCannAttributeList(nullptr, &count), ACL_ERROR_INVALID_PARAM);
}

}  // namespace
}  // namespace distbarrier::testing

namespace distbarrier::testing {
namespace {

class ReduceAsyncTest : public StreamTest {
 protected:
  void SetUp() override { ASSERT_ACL_OK(aclrtSetDevice(0)); }

  void* Device(const void* host, size_t bytes) {
    void* device = nullptr;
    EXPECT_ACL_OK(aclrtMalloc(&device, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    EXPECT_ACL_OK(aclrtMemcpy(device, bytes, host, bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    return device;
  }
};

TEST_F(ReduceAsyncTest, SumMaxMinInStreamOrder) {
  const std::vector<float> a = {1, -2, 3.5f, 4}, b = {10, 20, -30, 0.25f};
  void* dst = Device(a.data(), 16);
  void* src = Device(b.data(), 16);
  aclrtStream stream = NewStream();
  Gate& gate = Block(stream);  // the reduction waits for the stream, not for the call
  ASSERT_ACL_OK(aclrtReduceAsync(dst, src, 16, ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM, ACL_FLOAT, stream, nullptr));
  std::vector<float> got(4);
  ASSERT_ACL_OK(aclrtMemcpy(got.data(), 16, dst, 16, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(got, a);
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  ASSERT_ACL_OK(aclrtMemcpy(got.data(), 16, dst, 16, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(got, (std::vector<float>{11, 18, -26.5f, 4.25f}));
  ASSERT_ACL_OK(aclrtReduceAsync(dst, src, 16, ACL_RT_MEMCPY_SDMA_AUTOMATIC_MIN, ACL_FLOAT, stream, nullptr));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  ASSERT_ACL_OK(aclrtMemcpy(got.data(), 16, dst, 16, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(got, (std::vector<float>{10, 18, -30, 0.25f}));
  const std::vector<int16_t> c = {-5, 7, 300}, d = {4, 8, -300};
  void* dst16 = Device(c.data(), 6);
  void* src16 = Device(d.data(), 6);
  ASSERT_ACL_OK(aclrtReduceAsync(dst16, src16, 6, ACL_RT_MEMCPY_SDMA_AUTOMATIC_MAX, ACL_INT16, stream, nullptr));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  std::vector<int16_t> got16(3);
  ASSERT_ACL_OK(aclrtMemcpy(got16.data(), 6, dst16, 6, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(got16, (std::vector<int16_t>{4, 8, 300}));
}

TEST_F(ReduceAsyncTest, BadArgumentsFail) {
  const std::vector<float> a(4, 1.0f);
  void* dst = Device(a.data(), 16);
  void* src = Device(a.data(), 16);
  std::vector<float> host(4);
  int reserve = 0;
  EXPECT_EQ(aclrtReduceAsync(nullptr, src, 16, ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM, ACL_FLOAT, nullptr, nullptr),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReduceAsync(dst, src, 16, ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM, ACL_FLOAT, nullptr, &reserve),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReduceAsync(dst, src, 14, ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM, ACL_FLOAT, nullptr, nullptr),
            ACL_ERROR_INVALID_PARAM);  // not whole elements
  EXPECT_EQ(aclrtReduceAsync(dst, src, 32, ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM, ACL_FLOAT, nullptr, nullptr),
            ACL_ERROR_INVALID_PARAM);  // beyond the allocation
  EXPECT_EQ(aclrtReduceAsync(dst, host.data(), 16, ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM, ACL_FLOAT, nullptr, nullptr),
            ACL_ERROR_INVALID_PARAM);  // host memory
  EXPECT_EQ(aclrtReduceAsync(dst, src, 16, ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM, ACL_DOUBLE, nullptr, nullptr),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReduceAsync(dst, src, 16, static_cast<aclrtReduceKind>(1), ACL_FLOAT, nullptr, nullptr),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReduceAsync(dst, src, 16, ACL_RT_MEMCPY_SDMA_AUTOMATIC_EQUAL, ACL_FLOAT, nullptr, nullptr),
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT);
}

}  // namespace
}  // namespace distbarrier::testing

namespace distbarrier::testing {
namespace {

class RandomNumTest : public StreamTest {
 protected:
  void SetUp() override {
    ASSERT_ACL_OK(aclrtSetDevice(0));
    ASSERT_ACL_OK(aclrtMalloc(&counter_, 16, ACL_MEM_MALLOC_HUGE_FIRST));
    ASSERT_ACL_OK(aclrtMemset(counter_, 16, 0, 16));
    ASSERT_ACL_OK(aclrtMalloc(&result_, kNum * 8, ACL_MEM_MALLOC_HUGE_FIRST));
  }

  template <typename T>
  static void Put(aclrtRandomParaInfo* info, T value) {
    *info = aclrtRandomParaInfo{};
    std::memcpy(info->valueOrAddr, &value, sizeof value);
    info->size = sizeof value;
  }

  aclrtRandomNumTaskInfo Task(aclrtRandomNumFuncType kind, aclDataType type, uint64_t seed = 7) {
    aclrtRandomNumTaskInfo info{};
    info.dataType = type;
    info.randomNumFuncParaInfo.funcType = kind;
    info.randomResultAddr = result_;
    info.randomCounterAddr = counter_;
    Put(&info.randomSeed, seed);
    Put(&info.randomNum, kNum);
    return info;
  }

  template <typename T>
  std::vector<T> Run(const aclrtRandomNumTaskInfo& info) {
    EXPECT_ACL_OK(aclrtRandomNumAsync(&info, nullptr, nullptr));
    EXPECT_ACL_OK(aclrtSynchronizeStream(nullptr));
    std::vector<T> out(kNum);
    EXPECT_ACL_OK(aclrtMemcpy(out.data(), kNum * sizeof(T), result_, kNum * sizeof(T), ACL_MEMCPY_DEVICE_TO_HOST));
    return out;
  }

  static constexpr uint64_t kNum = 4096;
  void* counter_ = nullptr;
  void* result_ = nullptr;
};

TEST_F(RandomNumTest, UniformIsInRangeAndTheCounterMovesOn) {
  aclrtRandomNumTaskInfo info = Task(ACL_RT_RANDOM_NUM_FUNC_TYPE_UNIFORM_DIS, ACL_FLOAT);
  Put(&info.randomNumFuncParaInfo.paramInfo.uniformDisInfo.min, 1.0f);
  Put(&info.randomNumFuncParaInfo.paramInfo.uniformDisInfo.max, 2.0f);
  std::vector<float> first = Run<float>(info);
  double sum = 0;
  for (float v : first) {
    EXPECT_GE(v, 1.0f);
    EXPECT_LT(v, 2.0f);
    sum += v;
  }
  EXPECT_NEAR(sum / kNum, 1.5, 0.05);
  uint64_t counter[2] = {};
  ASSERT_ACL_OK(aclrtMemcpy(counter, 16, counter_, 16, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(counter[0], kNum);
  EXPECT_NE(Run<float>(info), first);  // the counter moved on
  ASSERT_ACL_OK(aclrtMemset(counter_, 16, 0, 16));
  EXPECT_EQ(Run<float>(info), first);  // same seed and counter: same numbers
}

TEST_F(RandomNumTest, UniformIntegersNormalsAndDropout) {
  aclrtRandomNumTaskInfo ints = Task(ACL_RT_RANDOM_NUM_FUNC_TYPE_UNIFORM_DIS, ACL_INT32);
  Put(&ints.randomNumFuncParaInfo.paramInfo.uniformDisInfo.min, int32_t{-3});
  Put(&ints.randomNumFuncParaInfo.paramInfo.uniformDisInfo.max, int32_t{4});
  std::set<int32_t> seen;
  for (int32_t v : Run<int32_t>(ints)) seen.insert(v);
  EXPECT_EQ(seen, (std::set<int32_t>{-3, -2, -1, 0, 1, 2, 3}));

  aclrtRandomNumTaskInfo normal = Task(ACL_RT_RANDOM_NUM_FUNC_TYPE_NORMAL_DIS, ACL_FLOAT);
  Put(&normal.randomNumFuncParaInfo.paramInfo.normalDisInfo.mean, 3.0f);
  Put(&normal.randomNumFuncParaInfo.paramInfo.normalDisInfo.stddev, 2.0f);
  std::vector<float> values = Run<float>(normal);
  double sum = 0, squares = 0;
  for (float v : values) sum += v;
  const double mean = sum / kNum;
  for (float v : values) squares += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 3.0, 0.15);
  EXPECT_NEAR(std::sqrt(squares / kNum), 2.0, 0.15);

  aclrtRandomNumTaskInfo truncated = normal;
  truncated.randomNumFuncParaInfo.funcType = ACL_RT_RANDOM_NUM_FUNC_TYPE_TRUNCATED_NORMAL_DIS;
  for (float v : Run<float>(truncated)) {
    EXPECT_GE(v, 3.0f - 4.0f);
    EXPECT_LE(v, 3.0f + 4.0f);
  }

  aclrtRandomNumTaskInfo dropout = Task(ACL_RT_RANDOM_NUM_FUNC_TYPE_DROPOUT_BITMASK, ACL_FLOAT);
  Put(&dropout.randomNumFuncParaInfo.paramInfo.dropoutBitmaskInfo.dropoutRation, 0.25f);
  std::vector<uint8_t> mask = Run<uint8_t>(dropout);
  size_t kept = 0;
  for (size_t i = 0; i < kNum / 8; ++i) kept += static_cast<size_t>(__builtin_popcount(mask[i]));
  EXPECT_NEAR(static_cast<double>(kept) / kNum, 0.75, 0.03);
}

TEST_F(RandomNumTest, ParametersMayLieInDeviceMemory) {
  void* bounds = nullptr;
  const float host[2] = {10.0f, 11.0f};
  ASSERT_ACL_OK(aclrtMalloc(&bounds, 8, ACL_MEM_MALLOC_HUGE_FIRST));
  ASSERT_ACL_OK(aclrtMemcpy(bounds, 8, host, 8, ACL_MEMCPY_HOST_TO_DEVICE));
  aclrtRandomNumTaskInfo info = Task(ACL_RT_RANDOM_NUM_FUNC_TYPE_UNIFORM_DIS, ACL_FLOAT);
  aclrtUniformDisInfo& uniform = info.randomNumFuncParaInfo.paramInfo.uniformDisInfo;
  Put(&uniform.min, bounds);
  uniform.min.isAddr = 1;
  uniform.min.size = 4;
  Put(&uniform.max, static_cast<void*>(static_cast<char*>(bounds) + 4));
  uniform.max.isAddr = 1;
  uniform.max.size = 4;
  for (float v : Run<float>(info)) {
    EXPECT_GE(v, 10.0f);
    EXPECT_LT(v, 11.0f);
  }
}

TEST_F(RandomNumTest, BadArgumentsFail) {
  aclrtRandomNumTaskInfo info = Task(ACL_RT_RANDOM_NUM_FUNC_TYPE_NORMAL_DIS, ACL_FLOAT);
  Put(&info.randomNumFuncParaInfo.paramInfo.normalDisInfo.mean, 0.0f);
  Put(&info.randomNumFuncParaInfo.paramInfo.normalDisInfo.stddev, 1.0f);
  int reserve = 0;
  EXPECT_EQ(aclrtRandomNumAsync(nullptr, nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtRandomNumAsync(&info, nullptr, &reserve), ACL_ERROR_INVALID_PARAM);
  aclrtRandomNumTaskInfo bad = info;
  bad.dataType = ACL_INT32;  // normals are floating point
  EXPECT_EQ(aclrtRandomNumAsync(&bad, nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  bad = info;
  bad.randomNumFuncParaInfo.funcType = static_cast<aclrtRandomNumFuncType>(9);
  EXPECT_EQ(aclrtRandomNumAsync(&bad, nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  bad = info;
  std::vector<uint8_t> host_counter(16);
  bad.randomCounterAddr = host_counter.data();
  EXPECT_EQ(aclrtRandomNumAsync(&bad, nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  bad = info;
  bad.randomNumFuncParaInfo.paramInfo.normalDisInfo.mean.size = 2;  // not a float's size
  EXPECT_EQ(aclrtRandomNumAsync(&bad, nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  bad = info;
  bad.randomSeed.size = 0;
  EXPECT_EQ(aclrtRandomNumAsync(&bad, nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  // More results than the buffer holds fail the stream when the task runs.
  bad = info;
  Put(&bad.randomNum, kNum * 4);
  ASSERT_ACL_OK(aclrtRandomNumAsync(&bad, nullptr, nullptr));
  EXPECT_EQ(aclrtSynchronizeStream(nullptr), ACL_ERROR_INVALID_PARAM);
}

}  // namespace
}  // namespace distbarrier::testing
