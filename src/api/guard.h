// No exception may cross the C API. Every extern "C" entry point that can throw (a worker
// thread that cannot start, memory that runs out) is a function-try-block that ends in one of
// these guards, which turn the exception into its API family's error code and message:
//
//   aclError aclrtLaunchHostFunc(...) try {
//     ...
//   } DISTBARRIER_ACL_GUARD
#pragma once

#include <cstdint>

#include "hccl/hccl_types.h"

namespace distbarrier::api {

enum class ApiFamily { kAcl, kAclnn, kHccl };

// Call only inside a catch handler: records why `api` failed as its recent error and returns
// the family's code (memory exhausted: 207001 / HCCL_E_MEMORY; a thread or other system
// resource refused: ACL_ERROR_RT_INTERNAL_ERROR / ACLNN_ERR_RUNTIME_ERROR / HCCL_E_SYSCALL).
int32_t CodeOfCurrentException(ApiFamily family, const char* api) noexcept;

}  // namespace distbarrier::api

#define DISTBARRIER_ACL_GUARD                                                                         \
  catch (...) {                                                                                       \
    return ::distbarrier::api::CodeOfCurrentException(::distbarrier::api::ApiFamily::kAcl, __func__); \
  }
#define DISTBARRIER_ACLNN_GUARD                                                                         \
  catch (...) {                                                                                         \
    return ::distbarrier::api::CodeOfCurrentException(::distbarrier::api::ApiFamily::kAclnn, __func__); \
  }
#define DISTBARRIER_HCCL_GUARD                                                                       \
  catch (...) {                                                                                      \
    return static_cast<HcclResult>(                                                                  \
        ::distbarrier::api::CodeOfCurrentException(::distbarrier::api::ApiFamily::kHccl, __func__)); \
  }
// For entry points that return a handle: null, with the reason as the recent error.
#define DISTBARRIER_NULL_GUARD(family)                                                           \
  catch (...) {                                                                                  \
    ::distbarrier::api::CodeOfCurrentException(::distbarrier::api::ApiFamily::family, __func__); \
    return nullptr;                                                                              \
  }
