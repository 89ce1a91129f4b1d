// aclTensor: a description of device memory (shape, strides, dtype, format, address).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "acl/acl_base.h"
#include "common/handle_table.h"

namespace distbarrier::op {

struct Tensor {
  std::vector<int64_t> view_dims;
  std::vector<int64_t> strides;
  std::vector<int64_t> storage_dims;
  aclDataType dtype = ACL_DT_UNDEFINED;
  aclFormat format = ACL_FORMAT_UNDEFINED;
  int64_t offset = 0;  // in elements
  void* data = nullptr;

  int64_t ElementCount() const;
  // Address of the first element of the view.
  void* FirstElement() const;
  std::string ShapeString() const;  // "(3, 4)"
};

HandleTable<Tensor>& Tensors();

// The other aclnn argument objects (aclnn/acl_meta.h): a scalar's bytes, an array's values, a
// tensor list's tensor handles. One table for all, so that a handle of one kind given where
// another is expected is refused, not misread.
struct Argument {
  enum class Kind { kScalar, kIntArray, kFloatArray, kBoolArray, kTensorList };
  Kind kind;
  aclDataType dtype = ACL_DT_UNDEFINED;  // a scalar's
  std::vector<uint8_t> bytes{};          // a scalar's value, or an array's elements
  std::vector<const void*> tensors{};    // a tensor list's handles, destroyed with it
};
HandleTable<Argument>& Arguments();

const char* DataTypeName(aclDataType dtype);
const char* FormatName(aclFormat format);
// A layout that says how to read dims, not a private tiled storage (ND, NCHW, NHWC, NCDHW,
// NDHWC, NCL, NC, HWCN): what torch_npu passes for plain tensors.
bool IsOriginFormat(aclFormat format);

}  // namespace distbarrier::op
