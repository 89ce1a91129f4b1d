// Sizes of the ACL data types, for every layer (aclDataTypeSize forwards here).
#pragma once

#include <cstddef>

#include "acl/acl_base.h"

namespace distbarrier {

// Bytes per element of `dtype`; 0 for an unknown type or one without a fixed size (STRING).
size_t DataTypeSize(aclDataType dtype);

}  // namespace distbarrier
