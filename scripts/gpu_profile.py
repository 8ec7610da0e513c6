"""Where a training step spends its time on a GPU, and what each candidate change buys.

Run on a CUDA machine: `python3 scripts/gpu_profile.py [--batch-size 128] [--steps 50]` (scripts/gpu_phase.py
step runs it; `--dry`: each variant for a step at a toy size on the CPU, uncompiled, so the script cannot rot).
Times the step `alexnet train` runs (its optimizer groups, bf16, channels-last, torch.compile, the fused
update, the band-matrix LRN with TF32 window sums) on `paper` and on `cuda-convnet-2012`, and variants of
them on the same weights and synthetic batch, and prints the top kernels of the profiler for both
baselines. Variants are built here, so that the package changes only for what the numbers justify
(BENCHMARKS.md). Adopted in earlier rounds: the multi-tensor and then the fused (compiled) optimizer,
the band-matrix LRN, TF32 for its window sums. Rejected: the plain-expression LRN, conv1's input padded
to 4 channels (no gain, H100 and H200), the LRN's window sums as fused shifted slices (7.08 against 5.90
ms, H200, 2026-11-27). Candidates now: cuda-convnet-2012's within-map norm with its gradient written out
(box means recomputed, not saved), CUDA graphs with the grouped convolutions split (5.59 against 5.90
ms on 2026-11-27, each alone 5.69 and 6.73), conv1 as a stride-1 3 x 3 convolution of 4 x 4 pixel
blocks (space-to-depth; its forward was 17% of paper's step), max-autotune (slow to compile), larger batches; the
multi-tensor update for reference.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from alexnet import build_model
from alexnet.model.lrn import WithinMapResponseNorm, _wide
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


class RecomputedWithinMapNorm(torch.autograd.Function):
    """cuda-convnet's within-map normalisation (alexnet/model/lrn.py's WithinMapResponseNorm) with its
    gradient written out: only the input is saved, the backward recomputes the neighbourhood means, and
    both passes take box means with avg_pool2d's forward alone (with zero padding and a stride of 1 the
    box filter is its own adjoint), where autograd saves x squared and the means in fp32 and runs
    avg_pool2d's backward. In at least fp32 whatever the input's dtype.

    b = x d^-p with d = k + scale mean(x^2) over the window, so
    dL/dx = g d^-p - 2 p scale x mean(g x d^(-p-1)), the mean again over each window."""

    @staticmethod
    def denominator(x, size, scale, k):
        """(x in at least fp32, k + scale x its neighbourhood means of squares): what both passes start from."""
        wide = x.to(_wide(x.dtype))
        return wide, k + scale * box_mean(wide * wide, size)

    @staticmethod
    def forward(ctx, x, size, scale, power, k):
        ctx.save_for_backward(x)
        ctx.settings = (size, scale, power, k)
        wide, denominator = RecomputedWithinMapNorm.denominator(x, size, scale, k)
        return (wide * denominator.pow(-power)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        size, scale, power, k = ctx.settings
        wide, denominator = RecomputedWithinMapNorm.denominator(x, size, scale, k)
        g = grad_out.to(wide.dtype)
        inner = box_mean(g * wide * denominator.pow(-power - 1), size)
        grad_x = g * denominator.pow(-power) - (2 * scale * power) * wide * inner
        return grad_x.to(x.dtype), None, None, None, None


def box_mean(values: torch.Tensor, size: int) -> torch.Tensor:
    """The mean over each size x size neighbourhood, zeros beyond the edges counted (as the layer does)."""
    return F.avg_pool2d(values, size, stride=1, padding=size // 2, count_include_pad=True)


class RecomputedWithinMap(nn.Module):
    def __init__(self, norm: WithinMapResponseNorm) -> None:
        super().__init__()
        self.settings = (norm.size, norm.scale, norm.power, norm.k)

    def forward(self, x):
        return RecomputedWithinMapNorm.apply(x, *self.settings)


class SpaceToDepthConv(nn.Module):
    """A strided convolution (conv1: 11 x 11, stride 4, 3 channels in) run as a stride-1 convolution of
    s x s blocks: the kernel zero-padded to 12 x 12 and both it and the input rearranged so that each
    4 x 4 block of pixels becomes 48 channels, then a 3 x 3 convolution. The same sums (the extra kernel
    row and column are zeros), on a shape tensor cores suit: cuDNN's kernels for 3 input channels under
    an 11 x 11 window were conv1's forward alone at 17% of paper's step (H200, 2026-11-27). The weight
    stays (96, 3, 11, 11): its gradient flows back through the rearrangement, so the optimizer and the
    checkpoint see the same parameter."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x):
        c = self.conv
        s, k = c.stride[0], c.kernel_size[0]
        blocks = -(-k // s)                                   # the kernel in whole blocks: 3
        # per side: the plain convolution's output (55), then the input those blocks read (228)
        h, w = ((n - k) // s * s + blocks * s for n in x.shape[-2:])
        x = F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))  # a zero row and column (or a crop)
        weight = F.pad(c.weight, (0, blocks * s - k, 0, blocks * s - k))
        return F.conv2d(space_to_depth(x, s).contiguous(memory_format=torch.channels_last),
                        space_to_depth(weight, s), c.bias)


def space_to_depth(t: torch.Tensor, s: int) -> torch.Tensor:
    """(n, c, h, w) -> (n, c * s * s, h / s, w / s): channel c * s * s + i * s + j holds pixel (i, j) of
    each s x s block."""
    n, c, h, w = t.shape
    return t.reshape(n, c, h // s, s, w // s, s).permute(0, 1, 3, 5, 2, 4).reshape(n, c * s * s, h // s, w // s)


def swap_modules(model: nn.Module, chosen, wrapper) -> None:
    """Replace each child module for which `chosen(child)` holds by `wrapper(child)`."""
    found = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if chosen(child)]
    for parent, name, child in found:  # replaced after the walk: a wrapper may hold the original inside
        setattr(parent, name, wrapper(child))


def run_variant(name, base, x, y, *, preset="paper", fused=True, split=False, recomputed_within_map=False,
                blocked_conv1=False, mode=None, steps=50, profile=False, dry=False):
    model = copy.deepcopy(base)
    recipe = get_preset(preset).recipe
    # The optimizer groups `alexnet train` builds, named before any module is swapped (a swapped conv1 would
    # otherwise lose its own group: 1 group where train has 2).
    groups = parameter_groups(model, recipe)
    if split:
        swap_modules(model, lambda m: isinstance(m, nn.Conv2d) and m.groups > 1, SplitGroupConv)
    if recomputed_within_map:
        swap_modules(model, lambda m: isinstance(m, WithinMapResponseNorm), RecomputedWithinMap)
    if blocked_conv1:  # conv1 alone has a stride
        swap_modules(model, lambda m: isinstance(m, nn.Conv2d) and m.stride[0] > 1, SpaceToDepthConv)
    device = x.device
    # TF32 for fp32 matrix products, as train sets it (SpeedSettings.tf32_matmul): under bf16 autocast the
    # only ones left are the LRN's window sums. Read when compiled.
    torch.set_float32_matmul_precision("high")
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
    print(f"{name:52s} {ms:7.2f} ms/step  {x.shape[0] / ms * 1e3:9.0f} images/s  (runs {', '.join(f'{t*1e3:.2f}' for t in times)} ms; "
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
    bases = {preset: build_model(preset, 1000, input_size=side) for preset in ("paper", "cuda-convnet-2012")}
    b = args.batch_size

    def batch(n):
        return torch.randn(n, 3, side, side, device=dev) * 50, torch.randint(0, 1000, (n,), device=dev)

    x, y = batch(b)
    print(f"{torch.cuda.get_device_name() if dev == 'cuda' else 'cpu (dry run)'}, torch {torch.__version__}, batch {b}")
    # In order of what is most likely to pay (each variant compiles afresh, so a time-limited call
    # still returns the first ones). cuda-convnet-2012, train's default, stepped 28% slower than paper on an
    # H200 (2026-11-27): its within-map norm is the difference.
    ccn = "cuda-convnet-2012"
    candidates = [("the step alexnet train runs", dict(profile=True)),
                  (f"{ccn}: the step alexnet train runs", dict(preset=ccn, profile=True)),
                  (f"{ccn}: + within-map norm recomputed", dict(preset=ccn, recomputed_within_map=True)),
                  ("+ conv1 as a 3x3 conv of 4x4 blocks (space-to-depth)", dict(blocked_conv1=True)),
                  (f"{ccn}: + both of those", dict(preset=ccn, recomputed_within_map=True, blocked_conv1=True)),
                  *[(f"the step alexnet train runs, batch {n}", dict(batch=n)) for n in (2 * b, 4 * b)],
                  ("+ grouped split + CUDA graphs", dict(split=True, mode="reduce-overhead")),  # timed: 5.5%
                  ("+ max-autotune (no CUDA graphs)", dict(mode="max-autotune-no-cudagraphs")),
                  ("- fused optimizer (the multi-tensor update)", dict(fused=False))]
    for name, kw in candidates:
        xn, yn = batch(kw.pop("batch")) if "batch" in kw else (x, y)
        try:
            run_variant(name, bases[kw.get("preset", "paper")], xn, yn, steps=steps, dry=args.dry, **kw)
        except Exception as exc:  # a variant that fails to build is reported, the others still run
            print(f"{name:52s} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)


if __name__ == "__main__":
    main()
