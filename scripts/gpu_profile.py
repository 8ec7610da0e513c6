"""Where a paper-network training step spends its time on a GPU, and what each candidate change buys.

Run on a CUDA machine: `python3 scripts/gpu_profile.py [--batch-size 128] [--steps 50]` (scripts/gpu_phase.py
step runs it; `--dry`: each variant for a step at a toy size on the CPU, uncompiled, so the script cannot rot).
Times the step `alexnet train` runs (its optimizer groups, bf16, channels-last, torch.compile, the fused
update, the band-matrix LRN with TF32 window sums) and variants of it on the same weights and synthetic batch, and prints the top kernels
of the profiler for the baseline and the best. Variants are built here, so that the package changes only
for what the numbers justify (BENCHMARKS.md, "GPU notes"). Earlier rounds adopted the multi-tensor
optimizer and the band-matrix LRN and rejected the plain-expression LRN; the step phases of 2026-11-26
adopted the fused (compiled) optimizer (H100) and TF32 for the LRN's window sums (H200), and rejected
conv1's input padded to 4 channels (no gain on either card). Candidates now: the LRN's window sums as
shifted slices that Inductor fuses (no band product, no fp32 intermediates saved), CUDA graphs, grouped
convolutions split into dense ones, both together, max-autotune (slow to compile), larger batches; IEEE
fp32 LRN sums and the multi-tensor update for reference.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from alexnet import build_model
from alexnet.model.lrn import LocalResponseNorm, _wide
from alexnet.presets import get_preset
from alexnet.training.optim import PaperSGD
from alexnet.training.schedule import parameter_groups
from alexnet.training.step import SpeedSettings, autocast, to_input


class SplitGroupConv(nn.Module):
    """A grouped convolution run as one dense convolution per group (cuDNN's grouped kernels can be slow)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x):
        c = self.conv
        g = c.groups
        xs, ws, bs = x.chunk(g, 1), c.weight.chunk(g, 0), c.bias.chunk(g, 0)
        return torch.cat([F.conv2d(xi, wi, bi, c.stride, c.padding) for xi, wi, bi in zip(xs, ws, bs)], 1)


def shifted_window_sum(values: torch.Tensor, size: int, groups: int) -> torch.Tensor:
    """The LRN's window sums as `size` shifted slices of one zero-padded tensor: plain functional operations,
    which Inductor fuses into the kernel that consumes them (nothing written out between, no band product)."""
    n, c, h, w = values.shape
    half, maps = size // 2, c // groups
    padded = F.pad(values.reshape(n, groups, maps, h, w), (0, 0, 0, 0, half, half))
    return sum(padded[:, :, shift:shift + maps] for shift in range(size)).reshape(n, c, h, w)


class ShiftedCrossMapNorm(torch.autograd.Function):
    """The LRN and its hand-derived gradient (as alexnet/model/lrn.py) with window sums that Inductor can
    fuse: only the input is saved, and the backward recomputes the denominator from it, so that a
    compiled step reads and writes each activation a few times instead of writing fp32 sums, denominators
    and scales out. In at least fp32 whatever the input's dtype."""

    @staticmethod
    def denominator(x, size, alpha, k, groups):
        """(x in at least fp32, k + alpha x its window sums of squares): what both passes start from."""
        wide = x.to(_wide(x.dtype))
        return wide, shifted_window_sum(wide * wide, size, groups) * alpha + k

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k, groups):
        ctx.save_for_backward(x)
        ctx.settings = (size, alpha, beta, k, groups)
        wide, denominator = ShiftedCrossMapNorm.denominator(x, size, alpha, k, groups)
        return (wide * denominator.pow(-beta)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        size, alpha, beta, k, groups = ctx.settings
        wide, denominator = ShiftedCrossMapNorm.denominator(x, size, alpha, k, groups)
        g = grad_out.to(wide.dtype)
        inner = shifted_window_sum(g * wide * denominator.pow(-beta - 1), size, groups)
        grad_x = g * denominator.pow(-beta) - (2 * alpha * beta) * wide * inner
        return grad_x.to(x.dtype), None, None, None, None, None


class ShiftedLRN(nn.Module):
    def __init__(self, lrn: LocalResponseNorm) -> None:
        super().__init__()
        self.settings = (lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.groups)

    def forward(self, x):
        return ShiftedCrossMapNorm.apply(x, *self.settings)


def swap_modules(model: nn.Module, chosen, wrapper) -> None:
    """Replace each child module for which `chosen(child)` holds by `wrapper(child)`."""
    found = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if chosen(child)]
    for parent, name, child in found:  # replaced after the walk: a wrapper may hold the original inside
        setattr(parent, name, wrapper(child))


def run_variant(name, base, x, y, *, fused=True, split=False, shifted_lrn=False, mode=None, tf32=True, steps=50,
                profile=False, dry=False):
    model = copy.deepcopy(base)
    recipe = get_preset("paper").recipe
    # The optimizer groups `alexnet train` builds, named before any module is swapped (a swapped conv1 would
    # otherwise lose its own group: 1 group where train has 2).
    groups = parameter_groups(model, recipe)
    if split:
        swap_modules(model, lambda m: isinstance(m, nn.Conv2d) and m.groups > 1, SplitGroupConv)
    if shifted_lrn:
        swap_modules(model, lambda m: isinstance(m, LocalResponseNorm), ShiftedLRN)
    device = x.device
    # TF32 for fp32 matrix products, as train sets it (SpeedSettings.tf32_matmul): under bf16 autocast the
    # only ones left are the LRN's window sums. Read when compiled.
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    model.to(device).to(memory_format=torch.channels_last).train()
    runner = model if dry else torch.compile(model, mode=mode, dynamic=False)
    opt = PaperSGD(groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                   fused=fused and not dry)
    speed = SpeedSettings("fp32" if dry else "bf16", True, not dry)
    x = to_input(x, speed)

    def step():
        with autocast(x.device, speed):
            logits = runner(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(1 if dry else 3):
        step()
    sync()
    compile_s = time.perf_counter() - t0
    for _ in range(0 if dry else 10):
        step()
    times = []
    for _ in range(1 if dry else 3):
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - t) / steps)
    ms = sorted(times)[len(times) // 2] * 1e3
    print(f"{name:44s} {ms:7.2f} ms/step  {x.shape[0] / ms * 1e3:9.0f} images/s  (runs {', '.join(f'{t*1e3:.2f}' for t in times)} ms; "
          f"warm-up incl. compile {compile_s:.0f} s)", flush=True)
    if profile and not dry:
        from torch.profiler import ProfilerActivity, profile as prof

        with prof(activities=[ProfilerActivity.CUDA]) as p:
            for _ in range(5):
                step()
            torch.cuda.synchronize()
        try:
            print(p.key_averages().table(sort_by="self_cuda_time_total", row_limit=18, max_name_column_width=70))
        except Exception:
            print(p.key_averages().table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=70))
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--dry", action="store_true", help="one uncompiled fp32 step per variant on the CPU, 64 px")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    dev, side, steps = ("cpu", 64, 1) if args.dry else ("cuda", 224, args.steps)
    base = build_model("paper", 1000, input_size=side)
    b = args.batch_size

    def batch(n):
        return torch.randn(n, 3, side, side, device=dev) * 50, torch.randint(0, 1000, (n,), device=dev)

    x, y = batch(b)
    print(f"{torch.cuda.get_device_name() if dev == 'cuda' else 'cpu (dry run)'}, torch {torch.__version__}, batch {b}")
    # In order of what is most likely to pay (each variant compiles afresh, so a time-limited call
    # still returns the first ones).
    candidates = [("the step alexnet train runs", dict(profile=True)),
                  ("+ LRN window sums as fused shifted slices", dict(shifted_lrn=True)),
                  ("+ CUDA graphs (reduce-overhead)", dict(mode="reduce-overhead")),
                  ("+ grouped convolutions split", dict(split=True)),
                  ("+ grouped split + CUDA graphs", dict(split=True, mode="reduce-overhead")),
                  ("- TF32 (IEEE fp32 LRN window sums)", dict(tf32=False)),
                  ("+ max-autotune (no CUDA graphs)", dict(mode="max-autotune-no-cudagraphs")),
                  *[(f"the step alexnet train runs, batch {n}", dict(batch=n)) for n in (2 * b, 4 * b)],
                  ("- fused optimizer (the multi-tensor update)", dict(fused=False))]
    for name, kw in candidates:
        xn, yn = batch(kw.pop("batch")) if "batch" in kw else (x, y)
        try:
            run_variant(name, base, xn, yn, steps=steps, dry=args.dry, **kw)
        except Exception as exc:  # a variant that fails to build is reported, the others still run
            print(f"{name:44s} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)


if __name__ == "__main__":
    main()
