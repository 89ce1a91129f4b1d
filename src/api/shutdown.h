// Process-wide start and end: aclInit / aclFinalize across all layers.
#pragma once

#include "acl/acl_base.h"

namespace distbarrier::api {

// False when aclInit already ran since the start or the last aclFinalize.
bool MarkInitialized();
// aclInit's configuration file (acl_compat_api.cc).
aclError ReadAclConfig(const char* path);
// Aborts every stream (waking blocked barriers), then forgets every handle of every layer and
// frees all memory: what aclFinalize promises for whatever the program forgot. Nothing is
// released when the runtime refuses (the error is returned).
aclError ReleaseEverything();

}  // namespace distbarrier::api
