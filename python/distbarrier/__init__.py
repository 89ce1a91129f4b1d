"""distbarrier for Python: aclnnDistributeBarrier, its devices, streams and groups, and which rank is slow.

    import torch, distbarrier
    comm = distbarrier.init_group()              # under torchrun: RANK, WORLD_SIZE, MASTER_ADDR/PORT
    x = torch.zeros(4)
    torch.ops.distbarrier._npu_distribute_barrier(x, comm.name, comm.size)   # enqueued, returns x
    distbarrier.synchronize()                    # waits; raises BarrierTimeoutError, PeerDiedError, ...
    print(distbarrier.rank_stats(comm).slowest().rank)

Built over the library's public C API (the extension distbarrier._distbarrier); for Debian's
/usr/bin/python3 and python3-torch. Importing it registers the torch op when torch is installed.
"""
from . import _distbarrier as _C
from .errors import (
    BarrierTimeoutError,
    DistbarrierError,
    InvalidArgumentError,
    PeerDiedError,
    StreamAbortedError,
    SyncTimeoutError,
)
from .op import barrier, register_torch_op
from .runtime import (
    Communicator,
    Stream,
    comm_name,
    current_device,
    device_count,
    init_all,
    init_group,
    set_device,
    synchronize,
)
from .stats import BarrierInfo, RankStats, last_barrier, plot_skew, rank_stats, reset_stats, set_stats_enabled

__version__ = _C.version()
TORCH_OP_REGISTERED = register_torch_op()

__all__ = [
    "BarrierInfo",
    "BarrierTimeoutError",
    "Communicator",
    "DistbarrierError",
    "InvalidArgumentError",
    "PeerDiedError",
    "RankStats",
    "Stream",
    "StreamAbortedError",
    "SyncTimeoutError",
    "barrier",
    "comm_name",
    "current_device",
    "device_count",
    "init_all",
    "init_group",
    "last_barrier",
    "plot_skew",
    "rank_stats",
    "reset_stats",
    "set_device",
    "set_stats_enabled",
    "synchronize",
]
