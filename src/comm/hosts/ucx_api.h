// The UCX functions the host agent uses, loaded on first use with dlopen (libucp.so.0 of
// Debian's libucx0) rather than linked: loading UCX installs its memory hooks (it patches mmap
// and friends) in the process, which every program linking distbarrier would then carry --
// and which crashes under the sanitizers' own interceptors. So only a process whose group
// spans hosts loads UCX. The headers come from libucx-dev (pkg-config module ucx).
#pragma once

#include <ucp/api/ucp.h>

#include <string>

namespace distbarrier::comm {

#define DISTBARRIER_UCX_FUNCTIONS(X)                                                                                  \
  X(ucp_config_read)                                                                                                  \
  X(ucp_config_release) X(ucp_init_version) X(ucp_cleanup) X(ucp_worker_create) X(ucp_worker_destroy)                 \
      X(ucp_worker_get_address) X(ucp_worker_release_address) X(ucp_worker_set_am_recv_handler) X(ucp_worker_get_efd) \
          X(ucp_worker_progress) X(ucp_worker_arm) X(ucp_ep_create) X(ucp_ep_close_nbx) X(ucp_am_send_nbx)            \
              X(ucp_request_check_status) X(ucp_request_free) X(ucs_status_string)

struct UcxApi {
#define DISTBARRIER_UCX_FIELD(name) decltype(&::name) name = nullptr;
  DISTBARRIER_UCX_FUNCTIONS(DISTBARRIER_UCX_FIELD)
#undef DISTBARRIER_UCX_FIELD
};

// The loaded functions (once per process), or null and *error saying why (UCX not installed).
const UcxApi* LoadUcx(std::string* error);

}  // namespace distbarrier::comm
