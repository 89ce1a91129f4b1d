// The ACL runtime slice through its public C API: devices and contexts.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "unit/runtime_fixture.h"

namespace distbarrier::testing {
namespace {

// ---------------------------------------------------------------------------------------
// Devices

TEST_F(DeviceTest, DefaultDeviceCountIs16) {
  uint32_t count = 0;
  ASSERT_ACL_OK(aclrtGetDeviceCount(&count));
  EXPECT_EQ(count, 16u);
  EXPECT_EQ(aclrtGetDeviceCount(nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(DeviceTest, SetDeviceOutOfRangeIsInvalidDeviceId) {
  EXPECT_EQ(aclrtSetDevice(-1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtSetDevice(16), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_NE(std::string(aclGetRecentErrMsg()), "");
}

TEST_F(DeviceTest, GetDeviceReturnsTheDeviceSet) {
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtSetDevice(5));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 5);
  ASSERT_ACL_OK(aclrtSetDevice(15));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 15);
  EXPECT_EQ(aclrtGetDevice(nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(DeviceTest, GetDeviceWithoutContextIsContextNull) {
  int32_t device = 42;
  EXPECT_EQ(aclrtGetDevice(&device), ACL_ERROR_RT_CONTEXT_NULL);
  EXPECT_EQ(device, 42);
}

TEST_F(DeviceTest, GetDeviceOnAnotherThreadWithoutSetDeviceIsContextNull) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclError result = ACL_SUCCESS;
  std::thread other([&] {
    int32_t device = 0;
    result = aclrtGetDevice(&device);
  });
  other.join();
  EXPECT_EQ(result, ACL_ERROR_RT_CONTEXT_NULL);
}

TEST_F(DeviceTest, ResetDeviceOutOfRangeIsInvalidDeviceId) {
  EXPECT_EQ(aclrtResetDevice(-1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtResetDevice(16), ACL_ERROR_RT_INVALID_DEVICEID);
}

TEST_F(DeviceTest, ResetDeviceAfterSetDeviceSucceedsAndDropsTheContext) {
  ASSERT_ACL_OK(aclrtSetDevice(2));
  EXPECT_ACL_OK(aclrtResetDevice(2));
  int32_t device = -1;
  EXPECT_EQ(aclrtGetDevice(&device), ACL_ERROR_RT_CONTEXT_NULL);
  // The device can be set again.
  ASSERT_ACL_OK(aclrtSetDevice(2));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 2);
}

// ---------------------------------------------------------------------------------------
// Contexts

TEST_F(ContextTest, CreateContextMakesItCurrent) {
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&context, 3));
  ASSERT_NE(context, nullptr);
  aclrtContext current = nullptr;
  ASSERT_ACL_OK(aclrtGetCurrentContext(&current));
  EXPECT_EQ(current, context);
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 3);
  EXPECT_ACL_OK(aclrtDestroyContext(context));
}

TEST_F(ContextTest, SetCurrentContextSwitchesDevice) {
  aclrtContext first = nullptr;
  aclrtContext second = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&first, 1));
  ASSERT_ACL_OK(aclrtCreateContext(&second, 4));
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 4);
  ASSERT_ACL_OK(aclrtSetCurrentContext(first));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 1);
  aclrtContext current = nullptr;
  ASSERT_ACL_OK(aclrtGetCurrentContext(&current));
  EXPECT_EQ(current, first);
}

TEST_F(ContextTest, CreateContextOutOfRangeIsInvalidDeviceId) {
  aclrtContext context = nullptr;
  EXPECT_EQ(aclrtCreateContext(&context, 16), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtCreateContext(&context, -1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtCreateContext(nullptr, 0), ACL_ERROR_INVALID_PARAM);
}

TEST_F(ContextTest, DestroyedContextIsInvalidHandle) {
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&context, 2));
  ASSERT_ACL_OK(aclrtDestroyContext(context));
  EXPECT_EQ(aclrtSetCurrentContext(context), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyContext(context), ACL_ERROR_RT_INVALID_HANDLE);
  // It was current: the thread has no current context any more.
  int32_t device = -1;
  EXPECT_EQ(aclrtGetDevice(&device), ACL_ERROR_RT_CONTEXT_NULL);
  aclrtContext current = nullptr;
  EXPECT_EQ(aclrtGetCurrentContext(&current), ACL_ERROR_RT_CONTEXT_NULL);
}

TEST_F(ContextTest, GarbageContextIsInvalidHandle) {
  EXPECT_EQ(aclrtSetCurrentContext(reinterpret_cast<aclrtContext>(0x1234)), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyContext(reinterpret_cast<aclrtContext>(0x1234)), ACL_ERROR_RT_INVALID_HANDLE);
}

// Regression: the context's stream handles were once looked up by object address (handles
// are ids), so they stayed "live" after the context died and silently dropped work.
TEST_F(ContextTest, StreamsAreDestroyedWithTheirContext) {
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&context, 0));
  aclrtStream stream = NewStream();
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(ran.load());

  ASSERT_ACL_OK(aclrtDestroyContext(context));
  ASSERT_ACL_OK(aclrtSetDevice(0));  // a current context, so only the stream handle is at fault
  std::atomic<bool>& late = NewFlag();
  EXPECT_EQ(aclrtLaunchHostFunc(stream, SetFlag, &late), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  EXPECT_EQ(aclrtStreamQuery(stream, &status), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  ASSERT_ACL_OK(aclrtSynchronizeDevice());
  EXPECT_FALSE(late.load());
}

// The same through aclrtResetDevice, which destroys the device's default context.
TEST_F(ContextTest, StreamsAreDestroyedWithResetDevice) {
  ASSERT_ACL_OK(aclrtSetDevice(1));
  aclrtStream stream = NewStream();
  ASSERT_ACL_OK(aclrtResetDevice(1));
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
}

}  // namespace
}  // namespace distbarrier::testing
