#!/usr/bin/python3
"""Which rank is slow? One process per rank, started by torchrun; one rank is delayed.

    torchrun --standalone --nproc_per_node 4 examples/python/slow_rank.py --slow-rank 2 --barriers 500

Every rank runs `--barriers` barriers through torch.ops.distbarrier._npu_distribute_barrier;
the slow rank sleeps `--delay-ms` before each, as a card with more work would. Rank 0 then
prints each rank's lateness (its arrival minus the first arrival) and names the slowest rank.
"""
import argparse
import time

import torch

import distbarrier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--barriers", type=int, default=500)
    parser.add_argument("--slow-rank", type=int, default=2)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    args = parser.parse_args()

    comm = distbarrier.init_group()  # RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from torchrun
    x = torch.zeros(16)
    for _ in range(args.barriers):
        if comm.rank == args.slow_rank:
            time.sleep(args.delay_ms / 1000)  # the injected slowness
        torch.ops.distbarrier._npu_distribute_barrier(x, comm.name, comm.size)  # enqueued; returns x
    distbarrier.synchronize()

    if comm.rank == 0:
        stats = distbarrier.rank_stats(comm)
        print(" rank | times last | mean lateness (ms) | max lateness (ms)")
        for row in stats:
            print(f"{row.rank:5} | {row.times_last:10} | {row.mean_lateness_ns / 1e6:18.3f} | {row.max_lateness_ns / 1e6:17.3f}")
        slowest = stats.slowest()
        print(f"slowest rank: {slowest.rank} (mean lateness {slowest.mean_lateness_ns / 1e6:.3f} ms, "
              f"last in {slowest.times_last} of {args.barriers} barriers)", flush=True)
    # Every rank leaves together: the group must outlive rank 0's reading of it.
    torch.ops.distbarrier._npu_distribute_barrier(x, comm.name, comm.size)
    distbarrier.synchronize()
    comm.destroy()


if __name__ == "__main__":
    main()
