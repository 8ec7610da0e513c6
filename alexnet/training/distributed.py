"""Data-parallel training on PyTorch's own engine: `torchrun` + DistributedDataParallel.

`alexnet train` reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...). Alone
it is one process; under `torchrun --nproc_per_node=N [--nnodes M --rdzv-endpoint HOST:PORT]` every
process trains on its shard of each global batch (NCCL on GPUs, gloo on CPU). The global batch is the
recipe's (128 for `paper`), split evenly across ranks, and the learning rate is the recipe's: the
optimisation is the same as one process with the whole batch.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import AlexNetError


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str | None) -> DistributedContext:
    """Join the process group torchrun describes in the environment (a no-op when run alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device_name or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if use_cuda:
        if not torch.cuda.is_available():
            raise AlexNetError("--device cuda under torchrun, but CUDA is not available")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=_dt.timedelta(minutes=30))
    return DistributedContext(rank, world, local_rank)


def device_for(ctx: DistributedContext, device: torch.device) -> torch.device:
    """Each process of a multi-GPU node takes the GPU of its local rank."""
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Sum tensors over all ranks, in place (nothing to do when alone)."""
    if dist.is_available() and dist.is_initialized():
        nccl = dist.get_backend() == "nccl"  # NCCL reduces only CUDA tensors
        for t in tensors:
            if nccl and t.device.type != "cuda":
                on_gpu = t.to(torch.device("cuda", torch.cuda.current_device()))
                dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
                t.copy_(on_gpu)
            else:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def per_rank_batch(global_batch: int, ctx: DistributedContext) -> int:
    if global_batch % ctx.world_size:
        raise AlexNetError(f"the global batch size {global_batch} does not divide evenly over "
                           f"{ctx.world_size} processes; choose --batch-size as a multiple of {ctx.world_size}")
    return global_batch // ctx.world_size


def global_batch_count(step: int, per_rank: int, ctx: DistributedContext, total: int) -> int:
    """Images in global batch `step` of an epoch of `total` images (the last one may be short)."""
    per_step = per_rank * ctx.world_size
    return max(0, min(per_step, total - step * per_step))
