"""One rank of test_processes.py's peer-death job: RANK, WORLD_SIZE and VICTIM from the
environment, the root info through a torch FileStore at STORE. Every rank passes 10 barriers;
then the victim kills itself (SIGKILL) and the others report what their next barrier raised."""
import os
import signal
import sys

import torch
from torch.distributed import FileStore

import distbarrier

rank, world_size, victim = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "VICTIM"))
comm = distbarrier.init_group(rank, world_size, store=FileStore(os.environ["STORE"], world_size), device=rank)
x = torch.zeros(1)
for _ in range(10):
    torch.ops.distbarrier._npu_distribute_barrier(x, comm.name, world_size)
distbarrier.synchronize()
if rank == victim:
    print(f"rank {rank}: pid {os.getpid()} dies", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
torch.ops.distbarrier._npu_distribute_barrier(x, comm.name, world_size)
try:
    distbarrier.synchronize()
except distbarrier.PeerDiedError as error:
    print(f"rank {rank}: PeerDiedError code={error.code} dead_ranks={error.dead_ranks} dead_pids={error.dead_pids}",
          flush=True)
    sys.exit(0)
print(f"rank {rank}: the barrier passed without rank {victim}", flush=True)
sys.exit(1)
