// The aclnn argument objects of aclnn/acl_meta.h beyond aclTensor (scalars, arrays, tensor
// lists), and aclnnInit / aclnnFinalize.
#include <cstring>
#include <vector>

#include "aclnn/aclnn_base.h"
#include "api/guard.h"
#include "common/dtype.h"
#include "common/error.h"
#include "op/tensor.h"

using distbarrier::Fail;
namespace op = distbarrier::op;
using Kind = op::Argument::Kind;

namespace {

constexpr uint64_t kMaxElements = uint64_t{1} << 32;  // bounds what an array copies

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kScalar: return "aclScalar";
    case Kind::kIntArray: return "aclIntArray";
    case Kind::kFloatArray: return "aclFloatArray";
    case Kind::kBoolArray: return "aclBoolArray";
    case Kind::kTensorList: return "aclTensorList";
  }
  return "argument";
}

template <typename Handle, typename T>
Handle* CreateArray(const char* api, Kind kind, const T* value, uint64_t size) {
  if (value == nullptr && size > 0) {
    Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: value is null but size is {}", api, size);
    return nullptr;
  }
  if (size > kMaxElements) {
    Fail(ACLNN_ERR_PARAM_INVALID, "{}: size {} is more than {} elements", api, size, kMaxElements);
    return nullptr;
  }
  auto argument = std::make_shared<op::Argument>(op::Argument{.kind = kind});
  argument->bytes.resize(size * sizeof(T));
  if (size > 0) std::memcpy(argument->bytes.data(), value, size * sizeof(T));
  return static_cast<Handle*>(op::Arguments().Add(std::move(argument)));
}

// Removes `handle` when it is a live argument of `kind`; null succeeds (like free(NULL)).
aclnnStatus Destroy(const char* api, Kind kind, const void* handle) {
  if (handle == nullptr) return ACLNN_SUCCESS;
  auto found = op::Arguments().Find(handle);
  if (!found || found->kind != kind) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {} is not a live {}", api, handle, KindName(kind));
  }
  op::Arguments().Take(handle);
  for (const void* tensor : found->tensors) op::Tensors().Take(tensor);
  return ACLNN_SUCCESS;
}

}  // namespace

extern "C" {

aclScalar* aclCreateScalar(void* value, aclDataType dataType) try {
  if (value == nullptr) {
    Fail(ACLNN_ERR_PARAM_NULLPTR, "aclCreateScalar: value is null");
    return nullptr;
  }
  const size_t size = distbarrier::DataTypeSize(dataType);
  if (size == 0) {
    Fail(ACLNN_ERR_PARAM_INVALID, "aclCreateScalar: dataType {} has no fixed size", static_cast<int>(dataType));
    return nullptr;
  }
  auto scalar = std::make_shared<op::Argument>(op::Argument{.kind = Kind::kScalar, .dtype = dataType});
  scalar->bytes.resize(size);
  std::memcpy(scalar->bytes.data(), value, size);
  return static_cast<aclScalar*>(op::Arguments().Add(std::move(scalar)));
}
DISTBARRIER_NULL_GUARD(kAclnn)

aclIntArray* aclCreateIntArray(const int64_t* value, uint64_t size) try {
  return CreateArray<aclIntArray>("aclCreateIntArray", Kind::kIntArray, value, size);
}
DISTBARRIER_NULL_GUARD(kAclnn)

aclFloatArray* aclCreateFloatArray(const float* value, uint64_t size) try {
  return CreateArray<aclFloatArray>("aclCreateFloatArray", Kind::kFloatArray, value, size);
}
DISTBARRIER_NULL_GUARD(kAclnn)

aclBoolArray* aclCreateBoolArray(const bool* value, uint64_t size) try {
  return CreateArray<aclBoolArray>("aclCreateBoolArray", Kind::kBoolArray, value, size);
}
DISTBARRIER_NULL_GUARD(kAclnn)

aclTensorList* aclCreateTensorList(const aclTensor* const* value, uint64_t size) try {
  if (value == nullptr && size > 0) {
    Fail(ACLNN_ERR_PARAM_NULLPTR, "aclCreateTensorList: value is null but size is {}", size);
    return nullptr;
  }
  if (size > kMaxElements) {
    Fail(ACLNN_ERR_PARAM_INVALID, "aclCreateTensorList: size {} is more than {} tensors", size, kMaxElements);
    return nullptr;
  }
  auto list = std::make_shared<op::Argument>(op::Argument{.kind = Kind::kTensorList});
  for (uint64_t i = 0; i < size; ++i) {
    if (!op::Tensors().Find(value[i])) {
      Fail(ACLNN_ERR_PARAM_INVALID, "aclCreateTensorList: tensor {} ({}) is not live", i,
           static_cast<const void*>(value[i]));
      return nullptr;
    }
    list->tensors.push_back(value[i]);
  }
  return static_cast<aclTensorList*>(op::Arguments().Add(std::move(list)));
}
DISTBARRIER_NULL_GUARD(kAclnn)

aclnnStatus aclDestroyScalar(const aclScalar* scalar) try { return Destroy("aclDestroyScalar", Kind::kScalar, scalar); }
DISTBARRIER_ACLNN_GUARD
aclnnStatus aclDestroyIntArray(const aclIntArray* array) try {
  return Destroy("aclDestroyIntArray", Kind::kIntArray, array);
}
DISTBARRIER_ACLNN_GUARD
aclnnStatus aclDestroyFloatArray(const aclFloatArray* array) try {
  return Destroy("aclDestroyFloatArray", Kind::kFloatArray, array);
}
DISTBARRIER_ACLNN_GUARD
aclnnStatus aclDestroyBoolArray(const aclBoolArray* array) try {
  return Destroy("aclDestroyBoolArray", Kind::kBoolArray, array);
}
DISTBARRIER_ACLNN_GUARD
aclnnStatus aclDestroyTensorList(const aclTensorList* array) try {
  return Destroy("aclDestroyTensorList", Kind::kTensorList, array);
}
DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnInit(const char* /*configPath: nothing to configure*/) {
  return ACLNN_SUCCESS;
}
aclnnStatus aclnnFinalize(void) {
  return ACLNN_SUCCESS;
}

}  // extern "C"
