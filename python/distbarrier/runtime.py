"""Devices, streams and communicators: aclrt* and Hccl* for Python.

The calling thread's current device decides which rank of a group it acts for, exactly as in
the C API: call set_device(d) in each thread (or process) before using a group there.
"""
import os
import threading

from . import _distbarrier as _C


def _check_int(name, value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high}], not {value}")
    return value


def set_device(device):
    """Makes `device` the calling thread's current device (aclrtSetDevice)."""
    _C.set_device(_check_int("device", device, 0, 2**31 - 1))


def current_device():
    """The calling thread's current device (aclrtGetDevice)."""
    return _C.get_device()


def device_count():
    """The number of simulated devices (DISTBARRIER_DEVICE_COUNT, default 16)."""
    return _C.device_count()


class Stream:
    """A stream of the calling thread's current device (aclrtCreateStream). Work on it runs in
    order, asynchronously to the host; a failed barrier fails the stream until it is destroyed."""

    def __init__(self):
        self.handle = _C.create_stream()
        self.device = _C.get_device()

    def synchronize(self, timeout_ms=-1):
        """Waits for the stream's work; raises the error of its first failed task."""
        synchronize(self, timeout_ms=timeout_ms)

    def destroy(self):
        if self.handle:
            handle, self.handle = self.handle, 0
            _C.destroy_stream(handle)
            _resources.release(self.device, handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __repr__(self):
        return f"Stream(device={self.device}, handle={self.handle:#x})"


def _stream_handle(stream):
    if stream is None:
        return 0
    if not isinstance(stream, Stream):
        raise TypeError(f"stream must be a distbarrier.Stream or None, not {type(stream).__name__}")
    if not stream.handle:
        raise ValueError("stream is destroyed")
    return stream.handle


class _InFlightResources:
    """Device memory a barrier reads when it runs (its V2 timeOut and elasticInfo), kept alive
    until the stream has passed it: freed when the stream or device is synchronized, or when a
    later barrier finds its stream idle."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_stream = {}  # (device, stream handle) -> [DeviceInts]

    def hold(self, device, stream, resources):
        if not resources:
            return
        with self._lock:
            self._by_stream.setdefault((device, stream), []).extend(resources)

    def release_if_idle(self, device, stream):
        with self._lock:
            if not self._by_stream.get((device, stream)):
                return
        try:
            done = _C.stream_done(stream)
        except Exception:  # a failed stream: freed at its synchronize or destroy
            return
        if done:
            self.release(device, stream)

    def release(self, device, stream=None):
        """Frees what barriers of `stream` (None: every stream of `device`) held."""
        with self._lock:
            for key in [key for key in self._by_stream if key[0] == device and (stream is None or key[1] == stream)]:
                del self._by_stream[key]


_resources = _InFlightResources()


def synchronize(stream=None, timeout_ms=-1):
    """Waits for work of the calling thread's current device: all its streams when `stream` is
    None (aclrtSynchronizeDevice), else that stream (aclrtSynchronizeStreamWithTimeout).
    Raises the error of a failed barrier (BarrierTimeoutError, PeerDiedError, ...), or
    SyncTimeoutError when `timeout_ms` (>= 0) runs out first."""
    from .errors import SyncTimeoutError

    _check_int("timeout_ms", timeout_ms, -1, 2**31 - 1)
    device = _C.get_device()
    try:
        if stream is None and timeout_ms == -1:
            _C.synchronize_device()
        else:
            _C.synchronize_stream(_stream_handle(stream), timeout_ms)
    except SyncTimeoutError:
        raise  # the work is still running: what it reads stays alive
    except BaseException:
        _resources.release(device, None if stream is None else stream.handle)
        raise
    _resources.release(device, None if stream is None else stream.handle)


class Communicator:
    """One rank of a communication group (an HcclComm). `name` is what barriers take as
    `group`; `rank` and `size` are this rank and the group's rank count."""

    def __init__(self, handle):
        self.handle = handle
        self.name = _C.comm_name(handle)
        self.rank = _C.comm_rank(handle)
        self.size = _C.comm_size(handle)

    def destroy(self):
        """HcclCommDestroy; barriers still in flight on the group must be synchronized first."""
        if self.handle:
            handle, self.handle = self.handle, 0
            _C.comm_destroy(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __repr__(self):
        return f"Communicator(name={self.name!r}, rank={self.rank}, size={self.size})"


def comm_name(comm):
    """The group name of a communicator (HcclGetCommName), as barriers take it."""
    if not isinstance(comm, Communicator):
        raise TypeError(f"comm must be a distbarrier.Communicator, not {type(comm).__name__}")
    return comm.name


def init_all(devices):
    """One communicator per device, all in this process (HcclCommInitAll): element i is rank i.
    Each thread that uses rank i calls set_device(devices[i]) first."""
    devices = list(devices)
    if len(devices) < 1:
        raise ValueError("init_all needs at least one device")
    for device in devices:
        _check_int("device", device, 0, 2**31 - 1)
    return [Communicator(handle) for handle in _C.comm_init_all(devices)]


# The store key of each init_group call: the n-th call of a thread uses ".../n", so that ranks
# that make their groups in the same order (one thread per rank, in processes or in threads
# of one process) meet on the same key.
_init_group_calls = threading.local()


def _env_int(name):
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"{name} is not set: pass it, or start the script with torchrun")
    return int(value)


def init_group(rank=None, world_size=None, store=None, device=None, timeout_s=120, key=None):
    """Joins a group of `world_size` processes as `rank` (HcclCommInitRootInfo). Rank 0 makes
    the root info (HcclGetRootInfo) and ships its 4108 bytes through `store` (a
    torch.distributed Store, or any object with set(key, bytes) and get(key) -> bytes); the
    others read it there.

    Defaults come from the environment torchrun sets: RANK, WORLD_SIZE, LOCAL_RANK (the
    device) and MASTER_ADDR / MASTER_PORT (a torch.distributed.TCPStore hosted by rank 0).
    `key`: the store key of the root info (default: one per init_group call of the thread).
    Sets the calling thread's device and returns the Communicator."""
    rank = _env_int("RANK") if rank is None else rank
    world_size = _env_int("WORLD_SIZE") if world_size is None else world_size
    _check_int("world_size", world_size, 1, 2**31 - 1)
    _check_int("rank", rank, 0, world_size - 1)
    if device is None:
        device = int(os.environ.get("LOCAL_RANK", rank))
    if store is None:
        store = _tcp_store(rank, world_size, timeout_s)
    if not (callable(getattr(store, "set", None)) and callable(getattr(store, "get", None))):
        raise TypeError(f"store must have set(key, value) and get(key), not {type(store).__name__}")
    set_device(device)
    calls = getattr(_init_group_calls, "count", 0)
    _init_group_calls.count = calls + 1
    if key is None:
        key = f"distbarrier/root_info/{calls}"
    elif not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if rank == 0:
        root = _C.get_root_info()
        store.set(key, root)
    else:
        root = bytes(store.get(key))
    return Communicator(_C.comm_init_root_info(world_size, root, rank))


def _tcp_store(rank, world_size, timeout_s):
    from datetime import timedelta

    from torch.distributed import TCPStore

    host = os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = _env_int("MASTER_PORT")
    return TCPStore(host, port, world_size, rank == 0, timedelta(seconds=timeout_s))
