"""Where `cuda-convnet-2012`'s step costs more than `paper`'s: each preset's eager forward + backward,
and `cuda-convnet-2012` with each of its departures from `paper` undone one at a time.

The GPU learn phase of 2026-11-26 trained `paper` uncompiled at 10,100-11,400 images/s and
`cuda-convnet-2012` at 8,360-8,440 (H200). The two networks differ in three places: conv2's within-map
normalisation, conv1's LRN and pooling before its ReLU, conv5's pooling before its ReLU.

    python scripts/preset_step_cost.py [--device cuda] [--batch 128] [--steps 20]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from alexnet import get_preset
from alexnet.config import ModelConfig
from alexnet.model.build import build_network


def variants() -> dict[str, ModelConfig]:
    paper, cuda = get_preset("paper").model, get_preset("cuda-convnet-2012").model

    def with_ops(index: int, ops: tuple[str, ...]) -> ModelConfig:
        convs = list(cuda.convs)
        convs[index] = replace(convs[index], ops=ops)
        return replace(cuda, convs=tuple(convs))

    return {"paper": paper, "cuda-convnet-2012": cuda,
            "cuda-convnet-2012, no within-map norm (conv2)": with_ops(1, paper.convs[1].ops),
            "cuda-convnet-2012, conv1 as paper (ReLU first)": with_ops(0, paper.convs[0].ops),
            "cuda-convnet-2012, conv5 as paper (ReLU first)": with_ops(4, paper.convs[4].ops)}


def ms_per_step(cfg: ModelConfig, batch: int, steps: int, device: str) -> float:
    """Median milliseconds of one forward + backward, eager fp32, after two warm-up steps."""
    torch.manual_seed(0)
    net = build_network(cfg, 1000).to(device).train()
    x = torch.randn(batch, 3, cfg.input_size, cfg.input_size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    times = []
    for _ in range(steps + 2):
        started = time.perf_counter()
        F.cross_entropy(net(x), y).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return 1000 * sorted(times[2:])[len(times[2:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=7)
    args = parser.parse_args()
    results = {name: ms_per_step(cfg, args.batch, args.steps, args.device) for name, cfg in variants().items()}
    for name, ms in results.items():
        print(f"{name:48s} {ms:8.1f} ms/step  {ms / results['paper']:5.2f} x paper  (batch {args.batch}, "
              f"eager fp32, {args.device})")


if __name__ == "__main__":
    main()
