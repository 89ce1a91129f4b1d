// The largest group the operator accepts: worldSize 384, one thread and stream per rank
// (768 threads on the test machine's 2 cores). Runs with DISTBARRIER_DEVICE_COUNT=384.
#include <gtest/gtest-spi.h>

#include "system/barrier_checker.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

TEST_F(RuntimeTest, WorldSize384PassesConsecutiveBarriersInOrder) {
  uint32_t devices = 0;
  ASSERT_ACL_OK(aclrtGetDeviceCount(&devices));
  ASSERT_EQ(devices, 384u) << "run with DISTBARRIER_DEVICE_COUNT=384";
  EXPECT_EQ(RunRecordedBarriers(384, 50, /*jitter=*/false), "");
}

// An assertion that fires in a rank thread used to leave host functions pointing at the
// thread's freed locals (a segfault) and the other ranks waiting in its barrier (a hang). It
// must fail the test with that one message.
TEST_F(RuntimeTest, AnAssertionInARankThreadFailsTheTestCleanly) {
  EXPECT_FATAL_FAILURE_ON_ALL_THREADS(RunRecordedBarriers(8, 20, /*jitter=*/false, /*fail_rank=*/3),
                                      "rank 3: injected failure");
}

}  // namespace
}  // namespace distbarrier::testing
