"""Where a paper-network training step spends its time on a GPU, and what each candidate change buys.

Run on a CUDA machine: `python3 scripts/gpu_profile.py [--batch-size 128] [--steps 50]`.
Times several variants of the same step (same weights, same synthetic batch) and prints the top
kernels of the profiler for the first and the last. Variants are built here by swapping modules, so
that the package itself changes only for what the numbers justify (BENCHMARKS.md, "GPU notes").
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from alexnet import build_model
from alexnet.model import lrn
from alexnet.model.lrn import LocalResponseNorm
from alexnet.training.optim import PaperSGD
from alexnet.training.speed import SpeedSettings, autocast, to_input


class PlainLRN(nn.Module):
    """The same formula written as plain tensor expressions, which torch.compile can fuse."""

    def __init__(self, lrn: LocalResponseNorm) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.groups = lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.groups

    def forward(self, x):
        n, c, h, w = x.shape
        m = c // self.groups
        half = self.size // 2
        sq = F.pad((x * x).reshape(n, self.groups, m, h, w), (0, 0, 0, 0, half, half))
        window = sum(sq[:, :, i:i + m] for i in range(self.size)).reshape(n, c, h, w)
        return x * (self.k + self.alpha * window).pow(-self.beta)


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


class ForeachPaperSGD(torch.optim.Optimizer):
    """PaperSGD's rule with multi-tensor (foreach) kernels: v = m v - wd lr p - lr g; p += v."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=5e-4):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            vs = []
            for p in ps:
                if "velocity" not in self.state[p]:
                    self.state[p]["velocity"] = torch.zeros_like(p)
                vs.append(self.state[p]["velocity"])
            torch._foreach_mul_(vs, group["momentum"])
            torch._foreach_add_(vs, ps, alpha=-group["weight_decay"] * group["lr"])
            torch._foreach_add_(vs, [p.grad for p in ps], alpha=-group["lr"])
            torch._foreach_add_(ps, vs)


def swap(model: nn.Module, kind, make) -> None:
    found = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, kind) and (kind is not nn.Conv2d or child.groups > 1)]
    for parent, name, child in found:  # replaced after the walk: a wrapper holds the original inside
        setattr(parent, name, make(child))


class BandLRN(PlainLRN):
    def forward(self, x):
        # The package's CUDA implementation (adopted from this script's measurements).
        return lrn._BandedCrossMapNorm.apply(x, self.size, self.alpha, self.beta, self.k, self.groups)


def run_variant(name, base, x, y, *, plain_lrn=False, band_lrn=False, foreach=False, split=False, mode=None,
                steps=50, profile=False):
    model = copy.deepcopy(base)
    if plain_lrn:
        swap(model, LocalResponseNorm, PlainLRN)
    if band_lrn:
        swap(model, LocalResponseNorm, BandLRN)
    if split:
        swap(model, nn.Conv2d, SplitGroupConv)
    model.cuda().to(memory_format=torch.channels_last).train()
    runner = torch.compile(model, mode=mode, dynamic=False)
    opt = (ForeachPaperSGD if foreach else PaperSGD)(model.parameters(), lr=1e-4)
    speed = SpeedSettings("bf16", True, True)

    def step():
        with autocast(x.device, speed):
            logits = runner(to_input(x, speed))
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    for _ in range(10):
        step()
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / steps)
    ms = sorted(times)[1] * 1e3
    print(f"{name:40s} {ms:7.2f} ms/step  {x.shape[0] / ms * 1e3:9.0f} images/s  (runs {', '.join(f'{t*1e3:.2f}' for t in times)} ms; "
          f"warm-up incl. compile {compile_s:.0f} s)", flush=True)
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        with prof(activities=[ProfilerActivity.CUDA]) as p:
            for _ in range(5):
                step()
            torch.cuda.synchronize()
        try:
            print(p.key_averages().table(sort_by="self_cuda_time_total", row_limit=18, max_name_column_width=70))
        except Exception:
            print(p.key_averages().table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=70))
    torch.cuda.empty_cache()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    base = build_model("paper", 1000)
    b = args.batch_size
    x = torch.randn(b, 3, 224, 224, device="cuda") * 50
    y = torch.randint(0, 1000, (b,), device="cuda")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, batch {b}")
    run_variant("current (custom-autograd LRN, PaperSGD)", base, x, y, steps=args.steps)
    run_variant("+ foreach SGD", base, x, y, foreach=True, steps=args.steps)
    run_variant("+ foreach SGD + split groups", base, x, y, foreach=True, split=True, steps=args.steps)
    run_variant("+ foreach SGD + band-matmul LRN", base, x, y, foreach=True, band_lrn=True, steps=args.steps,
                profile=True)
    run_variant("+ foreach + band LRN + split groups", base, x, y, foreach=True, band_lrn=True, split=True,
                steps=args.steps, profile=True)
    x2 = torch.randn(2 * b, 3, 224, 224, device="cuda") * 50
    y2 = torch.randint(0, 1000, (2 * b,), device="cuda")
    run_variant(f"+ foreach + band LRN, batch {2 * b}", base, x2, y2, foreach=True, band_lrn=True,
                steps=args.steps)

if __name__ == "__main__":
    main()
