"""One SGD step of Section 5 (`SGDStep`), how it runs fast without changing what it computes, and the
running totals of an epoch's steps.

Three switches, each tested against the plain fp32 path (tests/test_speed.py):
- precision: "fp32", "bf16" (autocast; the master weights and the optimizer stay fp32) or "fp16"
  (autocast with a gradient scaler, for GPUs without bf16);
- channels_last: NHWC memory layout, which cuDNN's fastest convolution kernels want;
- compile: `torch.compile` of the model (fuses LRN, ReLU, pooling and the elementwise work);
- fused_optimizer: PaperSGD's update compiled into one kernel per group (`PaperSGD(fused=True)`, the
  same rule, tested against hand-computed steps), on CUDA whenever the model is compiled: 9% faster a
  step on an H100 than the multi-tensor update (BENCHMARKS.md, the step phase of 2026-11-26);
- tf32_matmul: fp32 matrix products on TensorFloat-32 (`torch.set_float32_matmul_precision("high")`),
  on CUDA under autocast only. There the only fp32 products left are the LRN's window sums (a 0/1 band
  matrix times squares rounded to 10 bits: below the bf16 output's own rounding, tests/test_lrn.py),
  which run on tensor cores instead of SIMT: 11% faster a step on an H200 (BENCHMARKS.md). A named
  departure from exact fp32 sums; --precision fp32 keeps IEEE fp32 products.
Defaults: on CUDA bf16 (fp16 where bf16 is missing) + channels-last + compile + fused optimizer + TF32
for the LRN's sums + cuDNN autotuning; on CPU plain fp32, which is the fastest there (bf16 autocast on CPUs
without AMX is slower), and compiling is refused (CPU_COMPILE_REFUSED).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import PRECISIONS
from ..errors import AlexNetError
from ..model.lrn import LocalResponseNorm, WithinMapResponseNorm
from .distributed import all_reduce_sum

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class SpeedSettings:
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    fused_optimizer: bool = False
    tf32_matmul: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise AlexNetError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def describe(self) -> str:
        return (f"{self.precision}{', channels-last' if self.channels_last else ''}"
                f"{', torch.compile' if self.compile else ''}{', fused optimizer' if self.fused_optimizer else ''}"
                f"{', TF32 matmul' if self.tf32_matmul else ''}")


def default_speed(device: torch.device) -> SpeedSettings:
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return SpeedSettings("bf16" if bf16 else "fp16", channels_last=True, compile=True, fused_optimizer=True,
                             tf32_matmul=True)
    return SpeedSettings()


# Why --compile is refused on the CPU (BENCHMARKS.md, "torch.compile on the CPU"): there Inductor ran the
# `small` network's step 3x slower than eager, and torch 2.13's computes zero gradients for every
# convolution below a ReLU -> max-pool -> fully-connected layer (its scatter-based max-pool backward is
# scheduled after the kernel that reads it), so a compiled run would train its classifier alone, silently.
CPU_COMPILE_REFUSED = ("--compile: not on the CPU, where torch.compile ran this network 3x slower than eager and "
                       "(torch 2.13) gave its convolutions zero gradients; leave it off (the CPU default)")


def resolve_speed(device: torch.device, precision: str | None = None, channels_last: bool | None = None,
                  compile: bool | None = None, default_compile: bool = True) -> SpeedSettings:
    """The device's defaults, with any explicitly given switch overriding them (`default_compile=False`: not
    compiled unless asked, where compiling is untested, e.g. a network split over two devices)."""
    base = default_speed(device)
    if precision == "fp16" and device.type == "cpu":
        raise AlexNetError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    if compile and device.type == "cpu":
        raise AlexNetError(CPU_COMPILE_REFUSED)
    if compile is None and device.type == "cuda" and not default_compile:
        compile = False
    compile = base.compile if compile is None else compile
    precision = precision if precision is not None else base.precision
    return SpeedSettings(precision, base.channels_last if channels_last is None else channels_last, compile,
                         fused_optimizer=base.fused_optimizer and compile,  # --no-compile: nothing compiled
                         tf32_matmul=base.tf32_matmul and precision != "fp32")  # fp32 asked: IEEE products


def _probe_networks() -> list[nn.Module]:
    """Tiny networks of the patterns in which a torch's Inductor was found to compute this network's
    gradients wrong on the CPU (BENCHMARKS.md, "torch.compile on the CPU"): ReLU -> max-pool ->
    fully-connected, AlexNet's conv5 -> pool5 -> fc6 (torch 2.13 zeroes the convolution's gradient below it);
    and the cross-map LRN's hand-written backward (torch 2.11 zeroes every gradient below it), with the
    within-map norm of `cuda-convnet-2012` beside it."""
    pooled = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
                           nn.Linear(4 * 7 * 7, 5))
    normalised = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                               LocalResponseNorm(3, 1e-2, 0.75, 2.0, groups=2), WithinMapResponseNorm(3, 1e-2, 0.75, 1.0),
                               nn.Flatten(), nn.Linear(4 * 16 * 16, 5))
    return [pooled, normalised]


@functools.lru_cache(maxsize=None)
def compiled_gradients_are_right(device: torch.device, channels_last: bool) -> bool:
    """Whether torch.compile, on this device and memory layout, gives every parameter of `_probe_networks`
    the gradient that eager PyTorch gives. Tiny networks, compiled once a process (seconds); the run's
    network would be compiled by the same torch, with the same faults."""
    with torch.random.fork_rng(devices=[]):  # the networks' initial weights: the run's random stream untouched
        torch.manual_seed(0)
        networks = _probe_networks()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x = x.to(device).contiguous(memory_format=layout)  # once, for every network and both passes
    for net in networks:
        net.to(device, memory_format=layout)
        gradients = []
        for forward in (net, torch.compile(net, dynamic=False)):
            net.zero_grad(set_to_none=True)
            forward(x).square().sum().backward()
            gradients.append([torch.zeros(1) if p.grad is None else p.grad.flatten().double().cpu()
                              for p in net.parameters()])
        for eager, compiled in zip(*gradients):
            # cosine and length: TF32 convolutions may round the two a little apart; a zeroed gradient is 0 and 0
            same_way = F.cosine_similarity(eager, compiled, dim=0) > 0.99
            if not (same_way and abs(compiled.norm() / eager.norm() - 1) < 0.05):
                return False
    return True


def require_right_compiler(device: torch.device, speed: SpeedSettings) -> None:
    """Refuse to compile with a torch that compiles this network's gradients wrong (a run would train its
    classifier alone, silently)."""
    if not speed.compile:
        return
    try:
        right = compiled_gradients_are_right(device, speed.channels_last)
    except Exception as exc:  # no compiler at all (no C++ or Triton toolchain), or one that crashes
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise AlexNetError(f"torch.compile failed on {device.type} ({type(exc).__name__}: {first}); "
                           "train with --no-compile") from None
    if not right:
        raise AlexNetError(f"torch {torch.__version__} compiles wrong gradients on {device.type} (BENCHMARKS.md, "
                           "\"torch.compile on the CPU\"); train with --no-compile")


def autocast(device: torch.device, speed: SpeedSettings):
    if speed.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[speed.precision])


def grad_scaler(device: torch.device, speed: SpeedSettings) -> torch.amp.GradScaler:
    """A scaler that is active only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=speed.precision == "fp16")


def prepare_for_speed(model: nn.Module, device: torch.device, speed: SpeedSettings,
                      wrap: Callable[[nn.Module], nn.Module] | None = None, move: bool = True) -> nn.Module:
    """Move `model` to `device` in the chosen layout (unless `move` is False: a model placed over several
    devices already); return the module to call: `wrap(model)` (e.g. DistributedDataParallel) if given,
    compiled if asked.

    The returned module shares its parameters with `model`: save and load through `model`.
    """
    if move:
        model.to(device, memory_format=torch.channels_last if speed.channels_last else torch.preserve_format)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: autotune each convolution once
        if speed.tf32_matmul:  # process-wide, as cuDNN's flag: set before compiling, which reads it
            torch.set_float32_matmul_precision("high")
    wrapped = wrap(model) if wrap is not None else model
    # dynamic=False: the epoch's smaller last batch gets its own static graph (compiled once) instead
    # of a dynamic-shape recompile that every later full batch would then run.
    return torch.compile(wrapped, dynamic=False) if speed.compile else wrapped


def to_input(x: torch.Tensor, speed: SpeedSettings) -> torch.Tensor:
    """The batch in the layout the network runs in (a no-op when the preprocessor already wrote it so)."""
    return x.contiguous(memory_format=torch.channels_last if speed.channels_last else torch.contiguous_format)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               x: torch.Tensor, y: torch.Tensor, device: torch.device, speed: SpeedSettings,
               loss_weight: float = 1.0, max_loss: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on (x, y); returns (sum of per-image losses, number wrong), both left on the device.

    The objective is the sum of the batch's cross-entropy losses times `loss_weight` (1 / batch size
    alone; 1 / global batch size x ranks under data parallelism, so that DistributedDataParallel's
    averaging yields the gradient of the mean over the whole global batch even when ranks hold
    different numbers of images). Nothing here waits for the device, except with `max_loss`: then a
    batch whose mean loss is not finite or exceeds it (on any rank) is not applied at all, and
    (None, None) is returned.
    """
    with autocast(device, speed):
        logits = model(to_input(x, speed))
    losses = F.cross_entropy(logits.float(), y, reduction="none")  # the multinomial logistic regression
    if max_loss is not None:
        mean = losses.detach().mean() if len(losses) else losses.new_zeros(())
        bad = (~(mean <= max_loss)).float().reshape(1)  # NaN compares false
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(bad)  # every rank skips together, or none does
        if bad.item() > 0:
            optimizer.zero_grad(set_to_none=True)
            return None, None
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses.sum() * loss_weight).backward()
    scaler.step(optimizer)
    scaler.update()
    return losses.detach().sum(), (logits.detach().argmax(1) != y).sum()


class SGDStep:
    """One SGD step on a network: the module to run (laid out, DDP-wrapped, compiled), the optimizer and
    the gradient scaler. `alexnet train` and both benchmarks make it from a `TrainState` the same way."""

    def __init__(self, network: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 device: torch.device, speed: SpeedSettings, wrap: Callable[[nn.Module], nn.Module] | None = None,
                 move: bool = True) -> None:
        self.module = prepare_for_speed(network, device, speed, wrap, move)
        self.module.train()
        self.optimizer, self.scaler, self.speed, self.device = optimizer, scaler, speed, device

    def __call__(self, x: torch.Tensor, y: torch.Tensor, weight: float, max_loss: float | None = None):
        """(sum of the batch's losses, number wrong) on the device, or (None, None) for a skipped batch."""
        return train_step(self.module, self.optimizer, self.scaler, x, y, self.device, self.speed, weight, max_loss)


class EpochSums(NamedTuple):
    """An epoch's totals (over all ranks, once summed)."""
    loss_sum: float
    wrong: float
    images: float
    skipped: float

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(1.0, self.images)

    @property
    def error(self) -> float:
        return self.wrong / max(1.0, self.images)


class RunningTotals:
    """This rank's loss sum, wrong answers, images and skipped batches so far, kept on the device so that
    the steps never wait for it; read when a log, a check or the epoch's end needs it."""

    def __init__(self, device: torch.device, start: Sequence[float] | None = None) -> None:
        self.values = torch.zeros(len(EpochSums._fields), device=device, dtype=torch.float64)
        if start is not None:  # a resumed epoch: the sums so far, over all ranks, carried by rank 0 alone
            self.values += torch.tensor(list(start), dtype=torch.float64, device=device)

    def add(self, loss_sum: torch.Tensor | None, wrong: torch.Tensor | None, images: int) -> None:
        """A step's result; (None, None) is a skipped batch."""
        if loss_sum is None:
            self.values[3] += 1
            return
        self.values[0] += loss_sum
        self.values[1] += wrong
        self.values[2] += images

    def local(self) -> EpochSums:
        """This rank's totals so far (reads the device)."""
        return EpochSums(*self.values.tolist())

    def summed(self) -> EpochSums:
        """The totals summed over all ranks (a collective: every rank must call it)."""
        values = self.values.clone()
        all_reduce_sum(values)
        return EpochSums(*values.tolist())
