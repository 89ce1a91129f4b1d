"""The operator from Python: torch_npu's schema, its return value, V1/V2 selection, argument
checks before the library is reached, and each library error as its exception."""
import pytest

import distbarrier
from distbarrier import errors

torch = pytest.importorskip("torch")

op = torch.ops.distbarrier._npu_distribute_barrier


def run_on_both(comms, devs, **kwargs):
    """One barrier on each rank of a two-rank group, from this thread; returns what the op returned."""
    returned = []
    for comm, device in zip(comms, devs):
        distbarrier.set_device(device)
        x = kwargs.pop("x", None)
        x = torch.zeros(4) if x is None else x
        returned.append((x, op(x, comm.name, comm.size, **kwargs)))
    for device in devs:
        distbarrier.set_device(device)
        distbarrier.synchronize()
    return returned


def test_schema_is_torch_npus():
    assert str(op.default._schema) == "distbarrier::" + distbarrier.op.SCHEMA
    assert distbarrier.op.SCHEMA == (
        "_npu_distribute_barrier(Tensor x_ref, str group, int world_size, *, "
        "Tensor? time_out=None, Tensor? elastic_info=None) -> Tensor"
    )


@pytest.mark.parametrize(
    "make_x",
    [
        lambda: torch.zeros(4),
        lambda: torch.zeros(2, 3, 4, 5, dtype=torch.bfloat16),
        lambda: torch.zeros(6, 4, dtype=torch.int64).t(),  # non-contiguous
        lambda: torch.zeros(0, dtype=torch.bool),  # no memory at all
    ],
    ids=["float32", "bf16-4d", "int64-transposed", "bool-empty"],
)
def test_returns_x_ref_itself(pair, make_x):
    comms, devs = pair
    for x, returned in run_on_both(comms, devs, x=make_x()):
        assert returned is x
    distbarrier.set_device(devs[0])
    assert distbarrier.last_barrier(comms[0]).sequence == 1


def test_barrier_without_torch_tensor_and_with_a_stream(pair):
    comms, devs = pair
    streams = []
    for comm, device in zip(comms, devs):
        distbarrier.set_device(device)
        streams.append(distbarrier.Stream())
        assert distbarrier.barrier(comm, stream=streams[-1]) is None
    for stream, device in zip(streams, devs):
        distbarrier.set_device(device)
        stream.synchronize()
        stream.destroy()
        assert distbarrier.last_barrier(comms[0]).sequence == 1


@pytest.mark.parametrize(
    "kwargs, api",
    [
        ({}, "aclnnDistributeBarrierGetWorkspaceSize"),
        ({"time_out": torch.tensor([1000], dtype=torch.int32)}, "aclnnDistributeBarrierV2GetWorkspaceSize"),
        ({"elastic_info": torch.zeros(8, dtype=torch.int32)}, "aclnnDistributeBarrierV2GetWorkspaceSize"),
    ],
    ids=["V1", "V2-time_out", "V2-elastic_info"],
)
def test_v2_only_with_time_out_or_elastic_info(pair, kwargs, api):
    _, devs = pair
    distbarrier.set_device(devs[0])
    with pytest.raises(distbarrier.InvalidArgumentError) as raised:
        op(torch.zeros(1), "no_such_group", 2, **kwargs)
    assert raised.value.api == api
    assert raised.value.code == errors.ACLNN_ERR_PARAM_INVALID
    assert "'no_such_group'" in raised.value.message


def test_v1_times_out_by_environment_v2_by_its_tensor(devices, monkeypatch):
    # Rank 1 never arrives; rank 0's V1 barrier uses DISTBARRIER_TIMEOUT_MS, its V2 barrier the tensor.
    devs = devices(4)
    for variant, group_devices in (("V1", devs[:2]), ("V2", devs[2:])):
        comms = distbarrier.init_all(group_devices)
        distbarrier.set_device(group_devices[0])
        if variant == "V1":
            monkeypatch.setenv("DISTBARRIER_TIMEOUT_MS", "5")  # read when the executor is made
            op(torch.zeros(1), comms[0].name, 2)
            monkeypatch.delenv("DISTBARRIER_TIMEOUT_MS")
        else:
            op(torch.zeros(1), comms[0].name, 2, time_out=torch.tensor([5000], dtype=torch.int32))
        with pytest.raises(distbarrier.BarrierTimeoutError) as raised:
            distbarrier.synchronize(timeout_ms=10_000)  # a barrier without a timeout fails the test, not hangs it
        api = "aclnnDistributeBarrierV2" if variant == "V2" else "aclnnDistributeBarrier"
        assert raised.value.message.startswith(api + " timed out"), raised.value.message
        assert raised.value.code == errors.ACL_ERROR_RT_VECTOR_CORE_TIMEOUT
        assert raised.value.missing_ranks == [1]
        assert isinstance(raised.value, TimeoutError)


def test_elastic_barrier_leaves_the_excluded_rank_out(devices):
    devs = devices(3)
    comms = distbarrier.init_all(devs)
    # rank 2 is left out: table1 = [0, 1, -1], table2 = [0, 1, -1]
    info = torch.tensor([1, 2, 0, 0, 0, 1, -1, 0, 1, -1], dtype=torch.int32)
    for comm, device in zip(comms[:2], devs[:2]):
        distbarrier.set_device(device)
        op(torch.zeros(1), comm.name, 3, elastic_info=info, time_out=torch.tensor([10_000_000], dtype=torch.int32))
    for device in devs[:2]:
        distbarrier.set_device(device)
        distbarrier.synchronize()
    assert distbarrier.last_barrier(comms[0]).arrival_ns[2] == -1


BAD_ARGUMENTS = [
    ((lambda: [0.0], "g", 2, {}), TypeError, "x_ref must be a torch.Tensor"),
    ((lambda: torch.zeros(1, dtype=torch.float64), "g", 2, {}), TypeError, "dtype torch.float64"),
    ((lambda: torch.zeros([1] * 9), "g", 2, {}), ValueError, "9 dims"),
    ((lambda: torch.zeros(1), 7, 2, {}), TypeError, "group must be a str"),
    ((lambda: torch.zeros(1), "", 2, {}), ValueError, "group must be 1 to 127 bytes"),
    ((lambda: torch.zeros(1), "g" * 128, 2, {}), ValueError, "group must be 1 to 127 bytes"),
    ((lambda: torch.zeros(1), "g", "2", {}), TypeError, "world_size must be an int"),
    ((lambda: torch.zeros(1), "g", True, {}), TypeError, "world_size must be an int"),
    ((lambda: torch.zeros(1), "g", 1, {}), ValueError, "world_size must be in [2, 384]"),
    ((lambda: torch.zeros(1), "g", 385, {}), ValueError, "world_size must be in [2, 384]"),
    ((lambda: torch.zeros(1), "g", 2, {"time_out": torch.tensor([5])}), TypeError, "time_out must be an int32"),
    ((lambda: torch.zeros(1), "g", 2, {"time_out": torch.tensor([5, 5], dtype=torch.int32)}), ValueError, "(1,)"),
    ((lambda: torch.zeros(1), "g", 2, {"time_out": 1.5}), TypeError, "time_out must be an int32"),
    ((lambda: torch.zeros(1), "g", 2, {"time_out": 2**31}), ValueError, "time_out element"),
    ((lambda: torch.zeros(1), "g", 2, {"elastic_info": [0] * 7}), ValueError, "elastic_info must have 8"),
    ((lambda: torch.zeros(1), "g", 2, {"elastic_info": torch.zeros(8)}), TypeError, "elastic_info must be an int32"),
    ((lambda: torch.zeros(1), "g", 2, {"stream": 0}), TypeError, "stream must be a distbarrier.Stream"),
]


@pytest.mark.parametrize("call, error, words", BAD_ARGUMENTS, ids=[words for _, _, words in BAD_ARGUMENTS])
def test_bad_arguments_raise_before_the_library(monkeypatch, call, error, words):
    make_x, group, world_size, kwargs = call

    def reached(*args, **kwargs):
        raise AssertionError("the library was called")

    monkeypatch.setattr(distbarrier.op._C, "distribute_barrier", reached)
    monkeypatch.setattr(distbarrier.op._C, "DeviceInts", reached)
    with pytest.raises(error) as raised:
        distbarrier.barrier(group, world_size, x_ref=make_x(), **kwargs)
    assert words in str(raised.value)


def test_bad_arguments_through_the_torch_op(monkeypatch):
    monkeypatch.setattr(distbarrier.op._C, "distribute_barrier", None)
    with pytest.raises(ValueError, match="world_size must be in"):
        op(torch.zeros(1), "g", 1)
    with pytest.raises(TypeError, match="time_out must be an int32"):
        op(torch.zeros(1), "g", 2, time_out=torch.tensor([1.0]))


def test_library_refusals_are_invalid_argument_errors(pair, devices):
    comms, devs = pair
    distbarrier.set_device(devs[0])
    with pytest.raises(distbarrier.InvalidArgumentError) as raised:  # worldSize not the group's
        op(torch.zeros(1), comms[0].name, 3)
    assert raised.value.code == errors.ACLNN_ERR_INNER_TILING_ERROR
    assert isinstance(raised.value, ValueError)
    distbarrier.set_device(devices(1)[0])
    with pytest.raises(distbarrier.InvalidArgumentError) as raised:  # no rank of the group on this device
        op(torch.zeros(1), comms[0].name, 2)
    assert raised.value.code == errors.ACLNN_ERR_PARAM_INVALID
    with pytest.raises(distbarrier.InvalidArgumentError) as raised:
        distbarrier.set_device(10**6)
    assert raised.value.code == errors.ACL_ERROR_RT_INVALID_DEVICEID
    assert raised.value.api == "aclrtSetDevice"


def test_synchronize_timeout_leaves_the_stream_usable(pair):
    comms, devs = pair
    distbarrier.set_device(devs[0])
    stream = distbarrier.Stream()
    distbarrier.barrier(comms[0], time_out=60_000_000, stream=stream)  # rank 1 has not come yet
    with pytest.raises(distbarrier.SyncTimeoutError) as raised:
        stream.synchronize(timeout_ms=1)
    assert raised.value.code == errors.ACL_ERROR_RT_STREAM_SYNC_TIMEOUT
    assert in_flight(devs[0], stream.handle) == 1  # the waiting barrier still reads its timeOut memory
    distbarrier.set_device(devs[1])
    distbarrier.barrier(comms[1])
    distbarrier.synchronize()
    distbarrier.set_device(devs[0])
    stream.synchronize()  # the barrier passed; its timeOut memory was kept until now
    assert in_flight(devs[0], stream.handle) == 0
    stream.destroy()


def in_flight(device, stream_handle):
    """How many device buffers barriers of the stream still hold."""
    return len(distbarrier.runtime._resources._by_stream.get((device, stream_handle), []))


def test_v2_memory_is_freed_once_the_stream_is_idle(pair):
    # A loop that never calls distbarrier.synchronize must not keep every barrier's timeOut copy:
    # a barrier that finds its stream idle frees what the earlier ones held.
    comms, devs = pair
    for round_ in range(3):
        for comm, device in zip(comms, devs):
            distbarrier.set_device(device)
            distbarrier.barrier(comm, time_out=10_000_000)
        for device in devs:
            distbarrier.set_device(device)
            distbarrier._C.synchronize_stream(0, -1)  # waits without freeing anything
            assert in_flight(device, 0) == 1, f"round {round_}"
    distbarrier.synchronize()
    assert in_flight(devs[1], 0) == 0
