"""The little the trainers need from ``torch.distributed`` when started under ``torchrun``.

``torchrun --nproc_per_node N -m digitalhuman train face|voice ...`` sets ``WORLD_SIZE``; each
process then joins a gloo group (CPU), trains on its own shard of the data with
DistributedDataParallel, and rank 0 alone writes the run folder's files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

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


def _active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank()


def new_run(out: str | Path, desc: str, config: dict[str, Any]) -> Path:
    """A new numbered run folder with its ``config.json``, made by rank 0 and known to every rank."""
    from .runs import new_run_dir

    rank0 = not _active() or _rank() == 0
    run = new_run_dir(out, desc) if rank0 else None
    if _active():
        run = Path(from_rank0(str(run) if run else None))
    if rank0:
        (run / "config.json").write_text(json.dumps(config, indent=2))
    return run


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def teardown() -> None:
    """Wait for every rank, then leave the group."""
    import torch.distributed as dist

    barrier()
    dist.destroy_process_group()
