#include "api/guard.h"

#include <exception>
#include <new>
#include <system_error>

#include "acl/acl_base.h"
#include "aclnn/aclnn_base.h"
#include "common/error.h"

namespace distbarrier::api {

int32_t CodeOfCurrentException(ApiFamily family, const char* api) noexcept {
  enum class Kind { kMemory, kSystem, kOther };
  Kind kind = Kind::kOther;
  const char* what = "an unknown exception";
  try {
    throw;
  } catch (const std::bad_alloc& error) {
    kind = Kind::kMemory;
    what = error.what();
  } catch (const std::system_error& error) {  // std::thread when no thread can be made
    kind = Kind::kSystem;
    what = error.what();
  } catch (const std::exception& error) {
    what = error.what();
  } catch (...) {
  }
  int32_t code = 0;
  switch (family) {
    case ApiFamily::kAcl:
      code = kind == Kind::kMemory ? ACL_ERROR_RT_MEMORY_ALLOCATION : ACL_ERROR_RT_INTERNAL_ERROR;
      break;
    case ApiFamily::kAclnn: code = kind == Kind::kMemory ? ACLNN_ERR_INNER : ACLNN_ERR_RUNTIME_ERROR; break;
    case ApiFamily::kHccl:
      code = kind == Kind::kMemory ? HCCL_E_MEMORY : kind == Kind::kSystem ? HCCL_E_SYSCALL : HCCL_E_INTERNAL;
      break;
  }
  try {  // the message itself may not fit in memory any more
    Fail(code, "{}: {}: {}", api,
         kind == Kind::kMemory   ? "out of memory"
         : kind == Kind::kSystem ? "a system resource (a thread) could not be had"
                                 : "internal error",
         what);
  } catch (...) {
  }
  return code;
}

}  // namespace distbarrier::api
