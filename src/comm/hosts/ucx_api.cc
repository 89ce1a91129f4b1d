#include "comm/hosts/ucx_api.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>

namespace distbarrier::comm {

const UcxApi* LoadUcx(std::string* error) {
  static std::once_flag loaded;
  static UcxApi api;
  static std::string failure;
  std::call_once(loaded, [] {
    void* library = dlopen("libucp.so.0", RTLD_NOW | RTLD_LOCAL);  // never closed: UCX cannot be unloaded
    if (library == nullptr) {
      failure = fmt::format("groups across hosts need UCX (Debian: libucx0): {}", dlerror());
      return;
    }
#define DISTBARRIER_UCX_LOAD(name)                                       \
  api.name = reinterpret_cast<decltype(&::name)>(dlsym(library, #name)); \
  if (api.name == nullptr && failure.empty()) failure = fmt::format("UCX lacks {}: too old?", #name);
    DISTBARRIER_UCX_FUNCTIONS(DISTBARRIER_UCX_LOAD)
#undef DISTBARRIER_UCX_LOAD
  });
  if (!failure.empty()) {
    *error = failure;
    return nullptr;
  }
  return &api;
}

}  // namespace distbarrier::comm
