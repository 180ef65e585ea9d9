"""Work in several processes: torchrun, DistributedDataParallel, shared lists.

`main.py train` under `torchrun --nproc_per_node N [--nnodes M ...]` runs
one process (rank) per CPU share or GPU. torchrun sets WORLD_SIZE, RANK and
LOCAL_RANK in each process's environment; :func:`join` reads them and joins
the process group: NCCL on CUDA (each rank on its LOCAL_RANK's GPU), gloo on
CPUs. Alone (no WORLD_SIZE, or 1) everything here is a no-op, so one code
path serves both.

What each rank does (core.deepfuse.train): the same model (DDP starts every
rank from rank 0's weights and averages the gradients every step), its own
stream of training frames (seeded by rank), and the same steps; rank 0
alone writes the checkpoint, the curves and the configuration, and the
others read the checkpoint when a run resumes.

`main.py process TAKE ...` under torchrun shares the takes among the ranks
(:func:`share`); each take is solved and written by exactly one rank, and
rank 0 reports them all (:func:`gather`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        """This process writes the run's files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched() -> bool:
    """Started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def join(device_type: str, backend: str | None = None) -> Ranks:
    """Join the process group torchrun set up (a no-op alone): NCCL for CUDA
    tensors, gloo for CPU ones, or `backend`."""
    if not launched():
        return Ranks()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device_type == "cuda" else "gloo"))
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def local_world() -> int:
    """How many ranks share this machine (torchrun's LOCAL_WORLD_SIZE; 1 alone)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))


def share(items: list, ranks: Ranks) -> list[tuple[int, object]]:
    """This rank's share of `items`, with their indices: every world-th item
    from the rank's own, so each item goes to exactly one rank and the
    shares differ in length by one at most."""
    return [(i, items[i]) for i in range(ranks.rank, len(items), ranks.world)]


def gather(ranks: Ranks, obj) -> list:
    """Every rank's `obj` (picklable), in rank order, on every rank ([obj] alone)."""
    if not ranks.active:
        return [obj]
    import torch.distributed as dist

    out: list = [None] * ranks.world
    dist.all_gather_object(out, obj)
    return out


def leave(ranks: Ranks) -> None:
    """Wait for every rank, then leave the process group."""
    if ranks.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def any_rank(ranks: Ranks, flag: bool) -> bool:
    """True on every rank when it is true on any (e.g. out of time: all stop at the same step)."""
    if not ranks.active:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(ranks: Ranks, values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the ranks (the same dict alone)."""
    if not ranks.active or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) / ranks.world for k, v in zip(keys, t.tolist())}


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters as bytes: equal on every rank when they agree. (Buffers,
    the normalisation layers' running statistics, are each rank's own between steps: DDP hands
    every rank rank 0's at each step, and rank 0's are the ones saved.)"""
    h = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()
