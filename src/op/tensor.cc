#include "op/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/dtype.h"

namespace distbarrier::op {

int64_t Tensor::ElementCount() const {
  int64_t count = 1;
  for (int64_t dim : view_dims) count *= dim;
  return count;
}

void* Tensor::FirstElement() const {
  return static_cast<char*>(data) + offset * static_cast<int64_t>(DataTypeSize(dtype));
}

std::string Tensor::ShapeString() const { return fmt::format("({})", fmt::join(view_dims, ", ")); }

HandleTable<Tensor>& Tensors() {
  static auto* tensors = new HandleTable<Tensor>(HandleKind::kTensor);
  return *tensors;
}

HandleTable<Argument>& Arguments() {
  static auto* arguments = new HandleTable<Argument>(HandleKind::kArgument);
  return *arguments;
}

const char* DataTypeName(aclDataType dtype) {
  switch (dtype) {
    case ACL_FLOAT: return "FLOAT";
    case ACL_FLOAT16: return "FLOAT16";
    case ACL_INT8: return "INT8";
    case ACL_INT32: return "INT32";
    case ACL_UINT8: return "UINT8";
    case ACL_INT16: return "INT16";
    case ACL_UINT16: return "UINT16";
    case ACL_UINT32: return "UINT32";
    case ACL_INT64: return "INT64";
    case ACL_UINT64: return "UINT64";
    case ACL_DOUBLE: return "DOUBLE";
    case ACL_BOOL: return "BOOL";
    case ACL_STRING: return "STRING";
    case ACL_COMPLEX64: return "COMPLEX64";
    case ACL_COMPLEX128: return "COMPLEX128";
    case ACL_BF16: return "BF16";
    default: return "UNKNOWN";
  }
}

const char* FormatName(aclFormat format) {
  switch (format) {
    case ACL_FORMAT_UNDEFINED: return "UNDEFINED";
    case ACL_FORMAT_NCHW: return "NCHW";
    case ACL_FORMAT_NHWC: return "NHWC";
    case ACL_FORMAT_ND: return "ND";
    case ACL_FORMAT_NC1HWC0: return "NC1HWC0";
    case ACL_FORMAT_FRACTAL_Z: return "FRACTAL_Z";
    case ACL_FORMAT_FRACTAL_NZ: return "FRACTAL_NZ";
    case ACL_FORMAT_HWCN: return "HWCN";
    case ACL_FORMAT_NDHWC: return "NDHWC";
    case ACL_FORMAT_NCDHW: return "NCDHW";
    case ACL_FORMAT_NC: return "NC";
    case ACL_FORMAT_NCL: return "NCL";
    default: return "UNKNOWN";
  }
}

bool IsOriginFormat(aclFormat format) {
  switch (format) {
    case ACL_FORMAT_ND:
    case ACL_FORMAT_NCHW:
    case ACL_FORMAT_NHWC:
    case ACL_FORMAT_NCDHW:
    case ACL_FORMAT_NDHWC:
    case ACL_FORMAT_NCL:
    case ACL_FORMAT_NC:
    case ACL_FORMAT_HWCN:
      return true;
    default:
      return false;
  }
}

}  // namespace distbarrier::op
