// The aclnn argument objects of aclnn/acl_meta.h (scalars, arrays, tensor lists) and
// aclnnInit / aclnnFinalize, through the public C API.
#include <gtest/gtest.h>

#include <cstdint>

#include "acl/acl.h"
#include "aclnn/aclnn_base.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using AclnnMetaTest = RuntimeTest;

aclTensor* SmallTensor(void* data) {
  const int64_t dims[] = {2};
  return aclCreateTensor(dims, 1, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, dims, 1, data);
}

TEST_F(AclnnMetaTest, InitAndFinalizeSucceed) {
  EXPECT_EQ(aclnnInit(nullptr), ACLNN_SUCCESS);
  EXPECT_EQ(aclnnFinalize(), ACLNN_SUCCESS);
}

TEST_F(AclnnMetaTest, ScalarsCopyOneValueOfTheirType) {
  float value = 1.5f;
  aclScalar* scalar = aclCreateScalar(&value, ACL_FLOAT);
  ASSERT_NE(scalar, nullptr) << aclGetRecentErrMsg();
  EXPECT_EQ(aclDestroyScalar(scalar), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyScalar(scalar), ACLNN_ERR_PARAM_INVALID);  // destroyed already
  EXPECT_EQ(aclDestroyScalar(nullptr), ACLNN_SUCCESS);
  EXPECT_EQ(aclCreateScalar(nullptr, ACL_FLOAT), nullptr);
  EXPECT_EQ(aclCreateScalar(&value, ACL_STRING), nullptr);
  EXPECT_EQ(aclCreateScalar(&value, static_cast<aclDataType>(12345)), nullptr);
}

TEST_F(AclnnMetaTest, ArraysAreHandlesOfTheirOwnKind) {
  const int64_t ints[] = {1, 2, 3};
  const float floats[] = {0.5f};
  const bool bools[] = {true, false};
  aclIntArray* int_array = aclCreateIntArray(ints, 3);
  aclFloatArray* float_array = aclCreateFloatArray(floats, 1);
  aclBoolArray* bool_array = aclCreateBoolArray(bools, 2);
  ASSERT_NE(int_array, nullptr) << aclGetRecentErrMsg();
  ASSERT_NE(float_array, nullptr) << aclGetRecentErrMsg();
  ASSERT_NE(bool_array, nullptr) << aclGetRecentErrMsg();
  // A handle of another kind is refused, not misread.
  EXPECT_EQ(aclDestroyIntArray(reinterpret_cast<const aclIntArray*>(float_array)), ACLNN_ERR_PARAM_INVALID);
  EXPECT_EQ(aclDestroyScalar(reinterpret_cast<const aclScalar*>(bool_array)), ACLNN_ERR_PARAM_INVALID);
  EXPECT_EQ(aclDestroyIntArray(int_array), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyFloatArray(float_array), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyBoolArray(bool_array), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyIntArray(int_array), ACLNN_ERR_PARAM_INVALID);
  aclIntArray* empty = aclCreateIntArray(nullptr, 0);
  ASSERT_NE(empty, nullptr) << aclGetRecentErrMsg();
  EXPECT_EQ(aclDestroyIntArray(empty), ACLNN_SUCCESS);
  EXPECT_EQ(aclCreateIntArray(nullptr, 2), nullptr);
  EXPECT_EQ(aclCreateFloatArray(nullptr, 1), nullptr);
  EXPECT_EQ(aclCreateBoolArray(nullptr, 1), nullptr);
}

TEST_F(AclnnMetaTest, TensorListDestroysItsTensors) {
  float data[2] = {};
  aclTensor* first = SmallTensor(data);
  aclTensor* second = SmallTensor(data);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  const aclTensor* tensors[] = {first, second};
  aclTensorList* list = aclCreateTensorList(tensors, 2);
  ASSERT_NE(list, nullptr) << aclGetRecentErrMsg();
  EXPECT_EQ(aclDestroyTensorList(list), ACLNN_SUCCESS);
  EXPECT_EQ(aclDestroyTensor(first), ACLNN_ERR_PARAM_INVALID);  // went with the list
  EXPECT_EQ(aclDestroyTensorList(list), ACLNN_ERR_PARAM_INVALID);
  const aclTensor* dead[] = {first};
  EXPECT_EQ(aclCreateTensorList(dead, 1), nullptr);
  EXPECT_EQ(aclCreateTensorList(nullptr, 1), nullptr);
}

// aclFinalize frees the arguments a program forgot; their handles are dead after it.
TEST_F(AclnnMetaTest, FinalizeFreesForgottenArguments) {
  const int64_t ints[] = {7};
  aclIntArray* forgotten = aclCreateIntArray(ints, 1);
  ASSERT_NE(forgotten, nullptr);
  ASSERT_EQ(aclFinalize(), ACL_SUCCESS);
  EXPECT_EQ(aclDestroyIntArray(forgotten), ACLNN_ERR_PARAM_INVALID);
}

}  // namespace
}  // namespace distbarrier::testing
