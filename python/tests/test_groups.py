"""Groups from Python: init_all with one thread per rank, init_group through a store,
comm_name, statistics and the skew picture."""
import os
import subprocess
import sys
import threading

import pytest

import distbarrier

torch = pytest.importorskip("torch")

BARRIERS = 100


def run_threads(target, count):
    """Runs target(i) in `count` threads; re-raises the first exception one of them raised."""
    failures = []

    def guarded(i):
        try:
            target(i)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            failures.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def test_init_all_with_8_threads(devices):
    devs = devices(8)
    comms = distbarrier.init_all(devs)
    assert [comm.rank for comm in comms] == list(range(8))
    assert {comm.size for comm in comms} == {8}
    assert len({distbarrier.comm_name(comm) for comm in comms}) == 1
    seen = [None] * 8

    def rank_main(rank):
        distbarrier.set_device(devs[rank])
        x = torch.zeros(8)
        for _ in range(BARRIERS):
            assert torch.ops.distbarrier._npu_distribute_barrier(x, comms[rank].name, 8) is x
        distbarrier.synchronize()
        seen[rank] = distbarrier.last_barrier(comms[rank])

    run_threads(rank_main, 8)
    assert [info.sequence for info in seen] == [BARRIERS] * 8
    assert {info.rank_count for info in seen} == {8}
    distbarrier.set_device(devs[0])
    stats = distbarrier.rank_stats(comms[0])
    assert [row.rank for row in stats] == list(range(8))
    assert [row.barriers for row in stats] == [BARRIERS] * 8
    assert sum(row.times_last for row in stats) == BARRIERS  # one rank is last in each barrier
    assert stats.slowest() in stats
    distbarrier.reset_stats(comms[0])
    assert [row.barriers for row in distbarrier.rank_stats(comms[0])] == [0] * 8
    for comm in comms:
        comm.destroy()


class DictStore:
    """The part of a torch.distributed Store that init_group uses (one rank per process: the
    library refuses a second rank of a root-info group in one process; test_processes.py
    covers init_group across processes)."""

    def __init__(self):
        self.values = {}

    def set(self, key, value):
        self.values[key] = value

    def get(self, key):
        return self.values[key]


def test_init_group_arguments():
    with pytest.raises(ValueError, match="rank must be in"):
        distbarrier.init_group(4, 4, store=DictStore())
    with pytest.raises(TypeError, match="store must have set"):
        distbarrier.init_group(0, 2, store=object())
    with pytest.raises(TypeError, match="device must be an int"):
        distbarrier.init_all(["0"])


def test_rank_stats_as_dataframe(pair):
    pytest.importorskip("pandas")
    comms, devs = pair
    for comm, device in zip(comms, devs):
        distbarrier.set_device(device)
        distbarrier.barrier(comm)
    distbarrier.synchronize()
    frame = distbarrier.rank_stats(comms[1], as_dataframe=True)
    assert list(frame.index) == [0, 1] and list(frame["barriers"]) == [1, 1]


TRACED_PROGRAM = """
import threading, distbarrier
devices = [0, 1, 2]
comms = distbarrier.init_all(devices)
def rank_main(rank):
    distbarrier.set_device(devices[rank])
    for _ in range(20):
        distbarrier.barrier(comms[rank])
    distbarrier.synchronize()
threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_plot_skew_draws_the_trace(tmp_path):
    pytest.importorskip("matplotlib")
    trace = tmp_path / "trace.json"
    env = dict(os.environ, DISTBARRIER_TRACE=str(trace))
    subprocess.run([sys.executable, "-c", TRACED_PROGRAM], env=env, check=True, timeout=60)
    summary = distbarrier.plot_skew(trace, tmp_path / "skew.png")
    assert (tmp_path / "skew.png").stat().st_size > 0
    assert "rank" in summary
    with pytest.raises(subprocess.CalledProcessError):
        distbarrier.plot_skew(tmp_path / "missing.json", tmp_path / "x.png")
