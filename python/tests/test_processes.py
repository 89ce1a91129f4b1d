"""Processes: a torchrun job whose slow rank rank_stats names, and a killed process reported
to the others as an exception naming it."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "python" / "slow_rank.py"


def test_torchrun_job_names_the_slow_rank(tmp_path):
    # --redirects/--tee 2: Debian's torchrun 1.13 under Python 3.11 fails with their default 0
    # (Std.from_str("0") is None there); 2 sends stderr through torchrun, stdout stays as is.
    command = [sys.executable, "-m", "torch.distributed.run",  # torchrun, with this interpreter
               "--standalone", "--nproc_per_node", "4", "--redirects", "2", "--tee", "2",
               "--log_dir", str(tmp_path / "logs"),
               str(EXAMPLE), "--slow-rank", "2", "--barriers", "500"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
    assert re.search(r"^slowest rank: 2 \(mean lateness [0-9.]+ ms, last in \d+ of 500 barriers\)$",
                     result.stdout, re.M), result.stdout


def test_killed_process_is_reported_to_the_others(tmp_path):
    world_size, victim = 4, 3
    env = dict(os.environ, WORLD_SIZE=str(world_size), VICTIM=str(victim), STORE=str(tmp_path / "store"))
    ranks = [subprocess.Popen([sys.executable, str(HERE / "peer_death_worker.py")], env=dict(env, RANK=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(world_size)]
    outputs = [rank.communicate(timeout=120)[0] for rank in ranks]
    assert ranks[victim].returncode == -9, outputs[victim]
    pid = re.search(r"pid (\d+) dies", outputs[victim]).group(1)
    for rank in range(world_size):
        if rank != victim:
            assert ranks[rank].returncode == 0, outputs[rank]
            assert (f"rank {rank}: PeerDiedError code=507057 dead_ranks=[{victim}] dead_pids=[{pid}]"
                    in outputs[rank]), outputs[rank]
