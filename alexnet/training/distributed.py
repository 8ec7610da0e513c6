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
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import AlexNetError


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1   # ranks on this machine, sharing its cores (torchrun's LOCAL_WORLD_SIZE)

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
        timeout = _dt.timedelta(minutes=30)
        store = attempt_store(rank, world, timeout)
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timeout, store=store, rank=rank,
                                world_size=world)
    return DistributedContext(rank, world, local_rank, max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


SHARED_STORE_FIX = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"


def attempt_store(rank: int, world: int, timeout: _dt.timedelta) -> dist.Store | None:
    """The store for this attempt's process group; None: the one torchrun's environment names.

    torchrun (torch >= 2.5) gives every worker its agent's store, which outlives a restart, so a restarted
    rank can read the address its dead peer published in the attempt before: its connection is refused,
    or both ranks wait until the timeout (pytorch/pytorch#135712; 5 restarts in 10 on a loaded 2-core CPU).
    With every rank on this machine one agent numbers the attempts, so each attempt keeps its own keys.
    Across machines the agents' counts can differ; there the launcher must give each attempt a fresh
    store, which SHARED_STORE_FIX in torchrun's environment does (the README's cluster commands set it).
    """
    env = os.environ
    if env.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    if int(env.get("LOCAL_WORLD_SIZE", "0")) != world:
        if rank == 0 and int(env.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0:
            print(f"warning: torchrun restarts ranks on several machines with one store for all attempts, so a "
                  f"restarted rank can read its dead peer's address and hang; launch torchrun with "
                  f"{SHARED_STORE_FIX}", file=sys.stderr)
        return None
    agent = dist.TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), world, is_master=False, timeout=timeout)
    return dist.PrefixStore(f"alexnet/attempt-{env.get('TORCHELASTIC_RESTART_COUNT', '0')}", agent)


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
