"""`alexnet bench train`: training images per second of the fast path against a plain reference.

Both train the same architecture on the same synthetic batches (resident on the device, so the input
pipeline is out of the picture; `alexnet bench data` measures that):
- ours: exactly the step `alexnet train` runs (`training_step`): the network's `TrainState` (PaperSGD
  over the recipe's parameter groups, the gradient scaler) and its `SGDStep` with the device's defaults
  (CUDA: bf16 autocast, channels-last, torch.compile, the fused optimizer update, TF32 for the LRN's
  window sums, cuDNN autotuning; CPU: fp32), this project's LRN;
- the reference a user would otherwise write: the same layers in eager fp32 (PyTorch's default matrix
  product precision), NCHW, with
  `torch.nn.LocalResponseNorm` (alpha scaled by n to mean the same thing; one window over all maps,
  as it has no columns) and `torch.optim.SGD`.
Model FLOP utilisation counts 3x the forward multiply-adds x 2 FLOPs per training image.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from ..config import Recipe
from ..device import resolve_device
from ..model import build_model
from ..model.lrn import LocalResponseNorm
from ..presets import get_preset
from ..training.schedule import build_optimizer
from ..training.state import TrainState
from ..training.step import SGDStep, SpeedSettings, resolve_speed

# Dense peak FLOP/s by device-name fragment and precision (vendor datasheets), for utilisation.
PEAK_FLOPS = {
    "H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12},
}


def forward_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-adds of one forward pass for one image, counted from the layers' shapes."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output[0].numel() * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    probe = copy.deepcopy(model).cpu().float().eval()
    hooks = [m.register_forward_hook(count) for m in probe.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        probe(torch.zeros(1, 3, input_size, input_size))
    for h in hooks:
        h.remove()
    return total


def plain_reference(model: nn.Module) -> nn.Module:
    """The same network with torch's own LRN, as a user without this project would write it."""
    reference = copy.deepcopy(model)
    for parent in reference.modules():
        for name, child in parent.named_children():
            if isinstance(child, LocalResponseNorm):
                setattr(parent, name, nn.LocalResponseNorm(child.size, child.alpha * child.size, child.beta, child.k))
    return reference


def time_steps(step, warmup: int, steps: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def training_step(model: nn.Module, dev: torch.device, speed: SpeedSettings, recipe: Recipe,
                  classes: int) -> SGDStep:
    """The step `alexnet train` runs for `model`: its TrainState on the device (the recipe's optimizer groups,
    the scaler) and that state's SGDStep, as `train` makes them. Both benchmarks time this."""
    return TrainState(model.to(dev), recipe, classes, dev, speed).sgd_step(dev, speed)


def _time_ours(base: nn.Module, recipe: Recipe, x: torch.Tensor, y: torch.Tensor, dev: torch.device,
               speed: SpeedSettings, warmup: int, steps: int) -> float:
    step = training_step(copy.deepcopy(base), dev, speed, recipe, base.num_classes)
    return time_steps(lambda: step(x, y, 1 / len(y)), warmup, steps, dev)


def bench_train(preset: str = "paper", device: str | None = None, batch_size: int = 128, steps: int | None = None,
                num_classes: int = 1000, speed: SpeedSettings | None = None, log=print) -> dict:
    dev = resolve_device(device)
    speed = speed or resolve_speed(dev)
    cfg = get_preset(preset)
    size = cfg.model.input_size
    steps = steps or (30 if dev.type == "cuda" else 3)
    warmup = 10 if dev.type == "cuda" else 1
    torch.manual_seed(0)
    base = build_model(preset, num_classes)
    macs = forward_macs(base, size)
    x = torch.randn(batch_size, 3, size, size, device=dev) * 50
    y = torch.randint(0, num_classes, (batch_size,), device=dev)
    log(f"bench train: preset {preset}, batch {batch_size}, {size}x{size}, {dev}, "
        f"{macs / 1e9:.3f} GMAC per image forward; ours: {speed.describe()}")

    recipe = cfg.recipe
    matmul_precision = torch.get_float32_matmul_precision()
    ours_s = _time_ours(base, recipe, x, y, dev, speed, warmup, steps)  # its model is freed before the reference runs
    torch.set_float32_matmul_precision(matmul_precision)  # ours may have set TF32; the reference runs as it found

    reference = plain_reference(base).to(dev).train()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                              weight_decay=recipe.weight_decay)

    def ref_step():
        ref_opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(reference(x), y).backward()
        ref_opt.step()

    ref_s = time_steps(ref_step, warmup, steps, dev)
    ours_ips, ref_ips = batch_size * steps / ours_s, batch_size * steps / ref_s
    flops_per_image = 3 * 2 * macs
    result = {"images_per_second": ours_ips, "baseline_images_per_second": ref_ips, "device": str(dev),
              "batch_size": batch_size, "preset": preset, "precision": speed.precision,
              "speed": speed.describe(), "ms_per_step": 1000 * ours_s / steps,
              "optimizer_groups": len(build_optimizer(base, recipe).param_groups),
              "speedup": ours_ips / ref_ips, "tflops": ours_ips * flops_per_image / 1e12}
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else ""
    peak = next((p[speed.precision] for key, p in PEAK_FLOPS.items() if key in name), None)
    result["mfu"] = result["tflops"] * 1e12 / peak if peak else None
    log(f"  ours:      {ours_ips:10.0f} images/s  ({result['ms_per_step']:.2f} ms per step, PaperSGD in "
        f"{result['optimizer_groups']} groups as train builds it, {result['tflops']:.1f} TFLOP/s"
        + (f", {result['mfu']:.1%} of the {speed.precision} peak)" if peak else ")"))
    log(f"  reference: {ref_ips:10.0f} images/s  (eager fp32, NCHW, torch.optim.SGD)")
    log(f"  speed-up:  {result['speedup']:.2f}x")
    return result


def record_line(result: dict) -> str:
    """The BENCHMARKS.md line for a `bench_train` result."""
    mfu = f", MFU {result['mfu']:.1%}" if result["mfu"] is not None else ""
    return (f"{result['images_per_second']:.0f} images/s vs reference {result['baseline_images_per_second']:.0f} "
            f"({result['speedup']:.2f}x), {result['ms_per_step']:.2f} ms per step, batch {result['batch_size']}, "
            f"{result['speed']}, optimizer as alexnet train builds it ({result['optimizer_groups']} groups), "
            f"{result['tflops']:.2f} TFLOP/s{mfu}")
