"""The little the trainers need from ``torch.distributed`` when started under ``torchrun``.

``torchrun --nproc_per_node N -m digitalhuman train face|voice ...`` sets ``WORLD_SIZE``; each
process then joins a gloo group (CPU), trains on its own shard of the data with
DistributedDataParallel, and rank 0 alone writes the run folder's files.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")


def setup() -> tuple[bool, int, int]:
    """``(ddp, rank, world)``: join the process group under torchrun, else ``(False, 0, 1)``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return True, dist.get_rank(), dist.get_world_size()


def from_rank0(value: T) -> T:
    """Rank 0's ``value`` on every rank (e.g. the run folder it created)."""
    import torch.distributed as dist

    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def teardown() -> None:
    """Wait for every rank, then leave the group."""
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()
