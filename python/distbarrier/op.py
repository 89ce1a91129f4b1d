"""The operator: distbarrier.barrier(...) and, with torch, torch.ops.distbarrier._npu_distribute_barrier.

CPU tensors stand for device tensors. The barrier is enqueued on a stream of the calling
thread's current device (the default stream unless one is given) and the call returns at
once; synchronize() waits and raises a failed barrier's error.
"""
from . import _distbarrier as _C
from .runtime import Communicator, _check_int, _resources, _stream_handle

MAX_WORLD_SIZE = 384
GROUP_NAME_MAX_BYTES = 127  # COMM_NAME_MAX_LENGTH (128) with its terminating NUL
MAX_DIMS = 8

# torch dtype name -> aclDataType, for the dtypes the operator accepts as xRef (contract section 4).
_ACL_DTYPE = {
    "float32": 0,
    "float16": 1,
    "int8": 2,
    "int32": 3,
    "uint8": 4,
    "int16": 6,
    "int64": 9,
    "bool": 12,
    "bfloat16": 27,
}
_ACL_INT32 = 3


def _is_tensor(value):
    try:
        import torch
    except ImportError:
        return False
    return isinstance(value, torch.Tensor)


def _x_ref_description(x_ref):
    """(data pointer, dims, strides, aclDataType) of x_ref; None stands for a 1-element INT32."""
    if x_ref is None:
        return None
    if not _is_tensor(x_ref):
        raise TypeError(f"x_ref must be a torch.Tensor, not {type(x_ref).__name__}")
    dtype = str(x_ref.dtype).replace("torch.", "")
    if dtype not in _ACL_DTYPE:
        raise TypeError(f"x_ref dtype {x_ref.dtype} is not one the operator accepts ({', '.join(_ACL_DTYPE)})")
    if x_ref.device.type != "cpu":
        raise ValueError(f"x_ref must be a CPU tensor (it stands for a device tensor), not on {x_ref.device}")
    if x_ref.dim() > MAX_DIMS:
        raise ValueError(f"x_ref has {x_ref.dim()} dims; the operator takes at most {MAX_DIMS}")
    return x_ref.data_ptr(), list(x_ref.shape), list(x_ref.stride()), _ACL_DTYPE[dtype]


def _int32_values(name, value, length):
    """The int32 values of `value` (a tensor, a sequence, or for time_out an int), checked
    against the operator's shape: `length` elements, 1-D."""
    if _is_tensor(value):
        import torch

        if value.dtype != torch.int32:
            raise TypeError(f"{name} must be an int32 tensor, not {value.dtype}")
        if value.dim() != 1 or value.numel() != length:
            raise ValueError(f"{name} must have shape ({length},), not {tuple(value.shape)}")
        return [int(v) for v in value.tolist()]
    if isinstance(value, int) and not isinstance(value, bool) and length == 1:
        values = [value]
    elif isinstance(value, (list, tuple)):
        values = list(value)
    else:
        raise TypeError(f"{name} must be an int32 tensor or a sequence of ints, not {type(value).__name__}")
    if len(values) != length:
        raise ValueError(f"{name} must have {length} elements, not {len(values)}")
    for v in values:
        _check_int(f"{name} element", v, -(2**31), 2**31 - 1)
    return values


def _group_and_size(group, world_size):
    if isinstance(group, Communicator):
        if world_size is None:
            world_size = group.size
        group = group.name
    if not isinstance(group, str):
        raise TypeError(f"group must be a str or a distbarrier.Communicator, not {type(group).__name__}")
    if not group or len(group.encode()) > GROUP_NAME_MAX_BYTES or "\0" in group:
        raise ValueError(f"group must be 1 to {GROUP_NAME_MAX_BYTES} bytes without NUL, not {group!r}")
    if world_size is None:
        raise TypeError("world_size is required when group is a name")
    _check_int("world_size", world_size, 2, MAX_WORLD_SIZE)
    return group, world_size


def barrier(group, world_size=None, *, time_out=None, elastic_info=None, x_ref=None, stream=None):
    """Enqueues aclnnDistributeBarrier on `stream` (default: the current device's default
    stream) and returns at once; synchronize() waits for it.

    group: a Communicator, or a group name (then world_size is required).
    time_out: microseconds (an int, or an int32 tensor of shape (1,)); <= 0 means none.
    elastic_info: 4 + 2 * world_size ints [isElastic, rankNumAfter, sharedExpertRankNum,
        moeExpertNum, table1 (epRank -> localRank or -1), table2 (localRank -> epRank)].
    V2 runs when time_out or elastic_info is given, V1 (DISTBARRIER_TIMEOUT_MS) otherwise.
    x_ref (a tensor, never read or written) is returned; None stands for a 1-element one."""
    group, world_size = _group_and_size(group, world_size)
    x = _x_ref_description(x_ref)
    time_out_values = None if time_out is None else _int32_values("time_out", time_out, 1)
    elastic_values = None if elastic_info is None else _int32_values("elastic_info", elastic_info, 4 + 2 * world_size)
    stream_handle = _stream_handle(stream)

    device = _C.get_device()
    _resources.release_if_idle(device, stream_handle)
    # The V2 tensors are read when the barrier runs: copies in device memory that live until then.
    time_out_ints = None if time_out_values is None else _C.DeviceInts(time_out_values)
    elastic_ints = None if elastic_values is None else _C.DeviceInts(elastic_values)
    placeholder = None
    if x is None:
        placeholder = _C.DeviceInts([0])  # never read; any xRef will do
        x = (placeholder.data_ptr, [1], [1], _ACL_INT32)
    _C.distribute_barrier(*x, group, world_size, stream_handle, time_out_ints, elastic_ints)
    _resources.hold(device, stream_handle, [r for r in (time_out_ints, elastic_ints) if r is not None])
    del placeholder
    return x_ref


SCHEMA = (
    "_npu_distribute_barrier(Tensor x_ref, str group, int world_size, *, "
    "Tensor? time_out=None, Tensor? elastic_info=None) -> Tensor"
)


def _npu_distribute_barrier(x_ref, group, world_size, *, time_out=None, elastic_info=None):
    return barrier(group, world_size, time_out=time_out, elastic_info=elastic_info, x_ref=x_ref)


_library = None


def register_torch_op():
    """Registers torch.ops.distbarrier._npu_distribute_barrier (torch_npu's schema) for CPU
    tensors; returns False when torch is not installed."""
    global _library
    if _library is not None:
        return True
    try:
        import torch
        import torch.library
    except ImportError:
        return False
    library = torch.library.Library("distbarrier", "DEF")
    library.define(SCHEMA)
    library.impl("_npu_distribute_barrier", _npu_distribute_barrier, "CPU")
    _library = library
    return True
