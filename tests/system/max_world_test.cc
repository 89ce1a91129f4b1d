// The largest group the operator accepts: worldSize 384, one thread and stream per rank
// (768 threads on the test machine's 2 cores). Runs with DISTBARRIER_DEVICE_COUNT=384.
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

}  // namespace
}  // namespace distbarrier::testing
