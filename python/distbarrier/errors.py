"""Exceptions for failed library calls: each carries the CANN code, the C function and the message.

A call that the library refuses or a barrier that fails raises a DistbarrierError (or a
subclass picked by its code); arguments that Python can check itself raise TypeError or
ValueError before the library is called.
"""
import re

# Codes (acl/acl_base.h, aclnn/aclnn_base.h, hccl/hccl_types.h).
ACL_ERROR_INVALID_PARAM = 100000
ACL_ERROR_RT_PARAM_INVALID = 107000
ACL_ERROR_RT_INVALID_DEVICEID = 107001
ACL_ERROR_RT_INVALID_HANDLE = 107017
ACL_ERROR_RT_STREAM_ABORT = 107023
ACL_ERROR_RT_VECTOR_CORE_TIMEOUT = 507034
ACL_ERROR_RT_STREAM_SYNC_TIMEOUT = 507046
ACL_ERROR_RT_EVENT_SYNC_TIMEOUT = 507047
ACL_ERROR_RT_SUSPECT_REMOTE_ERROR = 507057
ACLNN_ERR_PARAM_NULLPTR = 161001
ACLNN_ERR_PARAM_INVALID = 161002
ACLNN_ERR_INNER_TILING_ERROR = 561002
HCCL_E_PARA = 1
HCCL_E_TIMEOUT = 9


class DistbarrierError(RuntimeError):
    """A library call returned `code` (CANN's value); `api` is the C function, `message` its
    aclGetRecentErrMsg()."""

    def __init__(self, code, api, message):
        super().__init__(f"{api} failed with {code}: {message}")
        self.code = code
        self.api = api
        self.message = message

    def __reduce__(self):  # picklable (multiprocessing, torch.distributed) despite the 3-argument constructor
        return (type(self), (self.code, self.api, self.message))


class InvalidArgumentError(DistbarrierError, ValueError):
    """The library refused an argument that only it can judge (an unknown group, a worldSize
    that is not the group's, no rank of the group on the current device, ...)."""


class BarrierTimeoutError(DistbarrierError, TimeoutError):
    """A barrier waited longer than its timeout (507034). `missing_ranks`: the ranks that had
    not arrived."""

    def __init__(self, code, api, message):
        super().__init__(code, api, message)
        found = re.search(r"ranks that had not arrived: \[([0-9, ]*)\]", message)
        self.missing_ranks = [int(rank) for rank in found.group(1).split(",") if rank.strip()] if found else []


class PeerDiedError(DistbarrierError):
    """A rank's process died while the barrier waited for it (507057). `dead_ranks` and
    `dead_pids` name them."""

    def __init__(self, code, api, message):
        super().__init__(code, api, message)
        dead = [(int(rank), int(pid)) for rank, pid in re.findall(r"(\d+) \(pid (\d+)\)", message)]
        self.dead_ranks = [rank for rank, _ in dead]
        self.dead_pids = [pid for _, pid in dead]


class SyncTimeoutError(DistbarrierError, TimeoutError):
    """synchronize(timeout_ms=...) ran out before the stream's work was done (507046); the
    stream goes on and stays usable."""


class StreamAbortedError(DistbarrierError):
    """The stream was destroyed or the runtime finalized while a barrier waited (107023)."""


_CLASS_BY_CODE = {
    ACL_ERROR_INVALID_PARAM: InvalidArgumentError,
    ACL_ERROR_RT_PARAM_INVALID: InvalidArgumentError,
    ACL_ERROR_RT_INVALID_DEVICEID: InvalidArgumentError,
    ACL_ERROR_RT_INVALID_HANDLE: InvalidArgumentError,
    ACLNN_ERR_PARAM_NULLPTR: InvalidArgumentError,
    ACLNN_ERR_PARAM_INVALID: InvalidArgumentError,
    ACLNN_ERR_INNER_TILING_ERROR: InvalidArgumentError,  # worldSize out of range or not the group's
    ACL_ERROR_RT_VECTOR_CORE_TIMEOUT: BarrierTimeoutError,
    ACL_ERROR_RT_STREAM_SYNC_TIMEOUT: SyncTimeoutError,
    ACL_ERROR_RT_EVENT_SYNC_TIMEOUT: SyncTimeoutError,
    ACL_ERROR_RT_SUSPECT_REMOTE_ERROR: PeerDiedError,
    ACL_ERROR_RT_STREAM_ABORT: StreamAbortedError,
}
_HCCL_CLASS_BY_CODE = {HCCL_E_PARA: InvalidArgumentError}


def from_status(code, api, message):
    """The exception for `code` returned by the C function `api` (called by the extension)."""
    if api.startswith("Hccl"):
        cls = _HCCL_CLASS_BY_CODE.get(code, DistbarrierError)
    else:
        cls = _CLASS_BY_CODE.get(code, DistbarrierError)
    return cls(code, api, message)
