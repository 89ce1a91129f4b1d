"""Which rank is slow: arrival statistics (distbarrier/distbarrier.h) and the skew picture.

Each call names a group and acts for the calling rank (the calling thread's current device).
Lateness of a rank in a barrier = its arrival minus the first arrival.
"""
import dataclasses
import os
import shutil
import subprocess
from typing import List

from . import _distbarrier as _C
from .op import _group_and_size


@dataclasses.dataclass(frozen=True)
class BarrierInfo:
    """The last barrier the calling rank passed."""

    sequence: int  # 1, 2, ...; 0 when none passed or statistics were off
    rank_count: int
    last_rank: int  # the rank that arrived last; -1 when sequence is 0
    spread_ns: int  # last arrival minus first arrival
    arrival_ns: List[int]  # per rank, arrival minus the first arrival; -1 for ranks not waited for


@dataclasses.dataclass(frozen=True)
class RankStats:
    """One rank's lateness since the group was made or its statistics were reset."""

    rank: int
    barriers: int  # barriers that waited for this rank
    times_last: int  # how often it arrived last
    mean_lateness_ns: float
    max_lateness_ns: int


class RankStatsList(list):
    """A list of RankStats, one per rank, that names the slowest rank."""

    def slowest(self):
        """The RankStats with the highest mean lateness."""
        return max(self, key=lambda row: (row.mean_lateness_ns, row.times_last))


def _group_name(group):
    return _group_and_size(group, 2)[0]  # the name checks only; world_size is not needed here


def last_barrier(group):
    """BarrierInfo of the last barrier the calling rank passed in `group` (a Communicator or a name)."""
    sequence, rank_count, last_rank, spread_ns, arrivals = _C.last_barrier(_group_name(group))
    return BarrierInfo(sequence, rank_count, last_rank, spread_ns, list(arrivals))


def rank_stats(group, as_dataframe=False):
    """Every rank's lateness in `group`: a RankStatsList (rank i at index i), or with
    as_dataframe=True a pandas DataFrame indexed by rank (needs pandas)."""
    rows = RankStatsList(RankStats(rank, *row) for rank, row in enumerate(_C.rank_stats(_group_name(group))))
    if not as_dataframe:
        return rows
    import pandas

    return pandas.DataFrame([dataclasses.asdict(row) for row in rows]).set_index("rank")


def reset_stats(group):
    """Starts the group's running statistics afresh, for every rank."""
    _C.reset_stats(_group_name(group))


def set_stats_enabled(enabled):
    """Turns recording of statistics on or off for all groups (DISTBARRIER_STATS)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, not {type(enabled).__name__}")
    _C.set_stats_enabled(enabled)


def skew_tool():
    """The path of distbarrier-skew: DISTBARRIER_SKEW, else P/bin of the install this package
    belongs to, else PATH."""
    if os.environ.get("DISTBARRIER_SKEW"):
        return os.environ["DISTBARRIER_SKEW"]
    installed = os.path.join(os.path.dirname(__file__), "..", "..", "..", "bin", "distbarrier-skew")
    if os.path.exists(installed):
        return os.path.normpath(installed)
    found = shutil.which("distbarrier-skew")
    if found is None:
        raise FileNotFoundError("distbarrier-skew not found: set DISTBARRIER_SKEW or source P/bin/setenv.bash")
    return found


def plot_skew(traces, output="skew.png", group=None):
    """Draws per-rank lateness from DISTBARRIER_TRACE files (a path or a list of paths, one per
    process) into `output` with distbarrier-skew (needs python3-matplotlib). Returns the tool's
    per-rank summary; raises subprocess.CalledProcessError with its output when it fails."""
    paths = [traces] if isinstance(traces, (str, os.PathLike)) else list(traces)
    if not paths:
        raise ValueError("plot_skew needs at least one trace file")
    command = [skew_tool(), *map(os.fspath, paths), "-o", os.fspath(output)]
    if group is not None:
        command += ["--group", _group_name(group)]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, command, output=result.stdout)
    return result.stdout
