// The aclnn entry points: tensors, executors and the barrier operator.
#include <vector>

#include "aclnn/aclnn_base.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "aclnnop/aclnn_distribute_barrier_v2.h"
#include "api/guard.h"
#include "common/error.h"
#include "op/distribute_barrier/distribute_barrier.h"
#include "op/moe_common/moe_common.h"
#include "op/tensor.h"

using distbarrier::Fail;
namespace op = distbarrier::op;

extern "C" {

aclTensor* aclCreateTensor(const int64_t* viewDims, uint64_t viewDimsNum, aclDataType dataType, const int64_t* stride,
                           int64_t offset, aclFormat format, const int64_t* storageDims, uint64_t storageDimsNum,
                           void* tensorData) try {
  constexpr uint64_t kMaxDims = 64;  // far beyond any real tensor; bounds what we copy
  if ((viewDims == nullptr && viewDimsNum > 0) || (storageDims == nullptr && storageDimsNum > 0) ||
      viewDimsNum > kMaxDims || storageDimsNum > kMaxDims) {
    Fail(ACLNN_ERR_PARAM_INVALID, "aclCreateTensor: viewDims/storageDims null or more than {} dims", kMaxDims);
    return nullptr;
  }
  auto tensor = std::make_shared<op::Tensor>();
  tensor->view_dims.assign(viewDims, viewDims + viewDimsNum);
  if (stride != nullptr) {
    tensor->strides.assign(stride, stride + viewDimsNum);
  }
  tensor->storage_dims.assign(storageDims, storageDims + storageDimsNum);
  tensor->dtype = dataType;
  tensor->format = format;
  tensor->offset = offset;
  tensor->data = tensorData;
  return static_cast<aclTensor*>(op::Tensors().Add(std::move(tensor)));
} DISTBARRIER_NULL_GUARD(kAclnn)

aclnnStatus aclDestroyTensor(const aclTensor* tensor) try {
  if (tensor == nullptr) return ACLNN_SUCCESS;  // like free(NULL)
  if (!op::Tensors().Take(tensor)) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "aclDestroyTensor: tensor {} is not live", static_cast<const void*>(tensor));
  }
  return ACLNN_SUCCESS;
} DISTBARRIER_ACLNN_GUARD

aclnnStatus aclSetAclOpExecutorRepeatable(aclOpExecutor* executor) try {
  if (executor == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "aclSetAclOpExecutorRepeatable: executor is null");
  if (auto moe = op::moe::MoeExecutors().Find(executor)) {
    moe->repeatable.store(true, std::memory_order_release);
    return ACLNN_SUCCESS;
  }
  auto found = op::Executors().Find(executor);
  if (!found) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "aclSetAclOpExecutorRepeatable: executor {} is not live",
                static_cast<const void*>(executor));
  }
  found->repeatable.store(true, std::memory_order_release);
  return ACLNN_SUCCESS;
} DISTBARRIER_ACLNN_GUARD

aclnnStatus aclDestroyAclOpExecutor(aclOpExecutor* executor) try {
  if (executor == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "aclDestroyAclOpExecutor: executor is null");
  if (!op::Executors().Take(executor) && !op::moe::MoeExecutors().Take(executor)) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "aclDestroyAclOpExecutor: executor {} is not live (run or destroyed already)",
                static_cast<const void*>(executor));
  }
  return ACLNN_SUCCESS;
} DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnDistributeBarrierGetWorkspaceSize(aclTensor* xRef, const char* group, int64_t worldSize,
                                                   uint64_t* workspaceSize, aclOpExecutor** executor) try {
  return op::PrepareBarrier({"aclnnDistributeBarrierGetWorkspaceSize", false, xRef, nullptr, nullptr, group, worldSize,
                             workspaceSize, executor});
} DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnDistributeBarrier(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor,
                                   aclrtStream stream) try {
  return op::LaunchBarrier("aclnnDistributeBarrier", false, workspace, workspaceSize, executor, stream);
} DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnDistributeBarrierV2GetWorkspaceSize(const aclTensor* xRef, const aclTensor* timeOutOptional,
                                                     const aclTensor* elasticInfoOptional, const char* group,
                                                     int64_t worldSize, uint64_t* workspaceSize,
                                                     aclOpExecutor** executor) try {
  return op::PrepareBarrier({"aclnnDistributeBarrierV2GetWorkspaceSize", true, xRef, timeOutOptional,
                             elasticInfoOptional, group, worldSize, workspaceSize, executor});
} DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnDistributeBarrierV2(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor,
                                     aclrtStream stream) try {
  return op::LaunchBarrier("aclnnDistributeBarrierV2", true, workspace, workspaceSize, executor, stream);
} DISTBARRIER_ACLNN_GUARD

}  // extern "C"
