"""Per-layer signal and gradient scales of a preset's freshly initialised network, on proxy images.

For each layer: the typical activation (RMS over everything), its image-dependent part (each unit's
standard deviation across the batch, RMS over units), and their ratio; for each weight, the gradient's
RMS and the first step's update relative to the weight (lr x |grad| / |w|). A network whose logits
barely depend on the image starts on the loss plateau of ln(classes).

    python scripts/signal_scales.py --presets paper cuda-convnet-2012 --batch 32 [--device cuda]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alexnet import build_model, get_preset
from alexnet.data.proxy import proxy_classes, render_proxy


def proxy_batch(n: int, size: int = 256, crop: int = 224, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n proxy images of n different classes: centre crops minus the batch's per-pixel mean, 0-255 scale."""
    rng = np.random.default_rng(seed)
    combos = proxy_classes(1000)
    picks = rng.choice(1000, n, replace=False)
    images = np.stack([np.asarray(render_proxy(combos[i], size, rng)[0], np.float32) for i in picks])
    o = (size - crop) // 2
    x = images[:, o:o + crop, o:o + crop] - images.mean(0)[o:o + crop, o:o + crop]
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(picks)


def scales(preset: str, x: torch.Tensor, y: torch.Tensor, device: str,
           weights: str | None = None) -> list[tuple[str, float, float]]:
    torch.manual_seed(0)
    model = build_model(preset, 1000)
    if weights:  # a run's checkpoint of this preset (read safely, any version): the scales after its training
        from pathlib import Path

        from alexnet.runs.checkpoint import read_torch_file, resolve_checkpoint
        model.load_state_dict(read_torch_file(resolve_checkpoint(Path(weights)), "checkpoint")["model"])
    model = model.to(device).eval()  # activations without dropout's random masks
    rows: list[tuple[str, float, float]] = []

    def record(name):
        def hook(module, inputs, output):
            out = output.detach().float().flatten(1)
            rms = out.pow(2).mean().sqrt().item()
            across = out.std(0).pow(2).mean().sqrt().item()  # the part that differs from image to image
            rows.append((name, rms, across))
        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in model.named_modules()
             if isinstance(module, (nn.Conv2d, nn.Linear)) or name.split(".")[-1].startswith(("relu", "norm", "pool"))]
    with torch.no_grad():
        model(x.to(device))
    for hook in hooks:
        hook.remove()
    logits = model.train()(x.to(device))  # the first training step's gradients, dropout on
    F.cross_entropy(logits, y.to(device)).backward()
    lr = get_preset(preset).recipe.lr
    grads = [(n, p.grad.pow(2).mean().sqrt().item(), lr * p.grad.norm().item() / max(p.norm().item(), 1e-30))
             for n, p in model.named_parameters() if n.endswith("weight")]
    return rows, grads, F.cross_entropy(logits, y.to(device)).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["paper", "cuda-convnet-2012"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", nargs="*", default=[], metavar="RUN",
                        help="a trained run of each preset (in --presets' order): its scales, not the initial ones")
    args = parser.parse_args()
    x, y = proxy_batch(args.batch)
    for i, preset in enumerate(args.presets):
        weights = args.weights[i] if i < len(args.weights) else None
        rows, grads, loss = scales(preset, x, y, args.device, weights)
        first = next(across for name, _, across in rows if name.endswith("conv1"))
        state = f"after training ({weights})" if weights else "at initialisation"
        print(f"\n## {preset} {state}: loss {loss:.4f} (ln 1000 = {math.log(1000):.4f}), batch {args.batch} proxy images")
        print("| layer | activation RMS | across-image RMS | across / RMS | across vs conv1 |")
        print("| --- | --- | --- | --- | --- |")
        for name, rms, across in rows:
            print(f"| {name} | {rms:.4g} | {across:.4g} | {across / max(rms, 1e-30):.3g} | {across / first:.3g} |")
        print("\n| weight | gradient RMS | first update / weight (lr x norm(g) / norm(w)) |")
        print("| --- | --- | --- |")
        for name, g, ratio in grads:
            print(f"| {name} | {g:.3g} | {ratio:.3g} |")


if __name__ == "__main__":
    main()
