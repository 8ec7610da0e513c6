"""`alexnet demo`: the whole pipeline on generated data, in a few minutes on a laptop CPU.

Generate ten classes of drawn shapes as real image files, prepare them as `alexnet prepare` does,
train the `small` preset with the paper's recipe, and evaluate with ten-patch testing.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import torch

from ..data.prepare import prepare_dataset
from ..data.synthetic import CLASSES, make_shapes_dataset
from ..errors import AlexNetError
from ..files import write_text
from ..evaluation.evaluate import evaluate_checkpoint
from ..config import TrainConfig
from ..training.loop import train

MARKER = ".alexnet-demo"
# A fixed amount of work, so that the same seed gives the same figure on any machine: sized to train in
# about a minute on 2 CPU cores (README, "Two commands"). A guard stops training on a machine many times
# slower than that, and says so loudly: its figure is then not the demo's.
DEMO_TRAIN_PER_CLASS = 200
DEMO_VAL_PER_CLASS = 30
DEMO_SIZE = 32
DEMO_EPOCHS = 8
DEMO_GUARD_S = 900.0        # training time after which no further epoch starts
# torch's threads for the whole demo, whatever the machine's cores: how a sum is split over threads changes
# its rounding, and eight epochs carry that far (seed 0 on 2 cores: 15.33% ten-patch error with 2 threads,
# 21.67% with 1). Fixed, the same seed gives the README's figure on a laptop of any size.
DEMO_THREADS = 2


@contextlib.contextmanager
def torch_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fresh_workdir(out: Path) -> None:
    """Reuse a folder only if an earlier demo made it; never clear a folder of the user's."""
    if out.exists():
        if not out.is_dir():
            raise AlexNetError(f"--out {out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise AlexNetError(f"--out {out}: folder exists and was not made by `alexnet demo`; "
                               "choose an empty or new folder")
        for name in ("images", "data", "run"):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / MARKER, "made by `alexnet demo`; the demo may clear this folder's contents\n")


def run_demo(out: Path, epochs: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    with torch_threads(DEMO_THREADS):
        return _run_demo(out, epochs, seed, progress)


def _run_demo(out: Path, epochs: int | None, seed: int, progress: bool) -> dict:
    started = time.monotonic()
    _fresh_workdir(out)
    images, data, run = out / "images", out / "data", out / "run"
    n_classes = len(CLASSES)
    print(f"[1/4] generating {n_classes} classes of shapes ({', '.join(CLASSES)}): "
          f"{DEMO_TRAIN_PER_CLASS} train + {DEMO_VAL_PER_CLASS} val images each, random sizes, "
          f"colours, clutter and noise -> {images}")
    make_shapes_dataset(images, DEMO_TRAIN_PER_CLASS, DEMO_VAL_PER_CLASS, seed=seed)

    print(f"[2/4] preparing: shorter side to {DEMO_SIZE}, centre crop, mean image and RGB PCA -> {data}")
    prepare_dataset(images, data, size=DEMO_SIZE, progress=progress)

    epochs = epochs or DEMO_EPOCHS
    print(f"[3/4] training the `small` preset for {epochs} epochs with the paper's recipe "
          f"(two columns, LRN, overlapping pooling, dropout, PaperSGD, random crops + flips + PCA noise) -> {run}")
    last = train(TrainConfig(data=data, out=run, preset="small", epochs=epochs, seed=seed, device="cpu",
                             progress=progress, time_limit=DEMO_GUARD_S))

    print("[4/4] evaluating with ten-patch testing (4 corners + centre, and their reflections)")
    center = evaluate_checkpoint(str(run), tta="center", device="cpu")
    ten = evaluate_checkpoint(str(run), tta="10crop", device="cpu")
    chance = 1 - 1 / n_classes
    print()
    print(f"Result on {ten['images']} validation images of {n_classes} classes (chance: {chance:.0%} top-1 error):")
    print(f"  centre patch : top-1 error {center['top1_error']:6.2%}   top-5 error {center['top5_error']:6.2%}")
    print(f"  ten patches  : top-1 error {ten['top1_error']:6.2%}   top-5 error {ten['top5_error']:6.2%}")
    if last["epoch"] < epochs:
        print(f"  WARNING: this machine was too slow: training stopped after {last['epoch']} of {epochs} epochs "
              f"(its guard: no epoch starts after {DEMO_GUARD_S:g} s of training), so this is not the demo's figure. Run "
              f"`alexnet demo --out {out}` again on a less busy machine, or `alexnet train --data {data} --out {run} "
              f"--preset small --epochs {epochs} --resume` to finish the run.")
    print(f"  trained {last['epoch']} epoch{'s' if last['epoch'] != 1 else ''} in {time.monotonic() - started:.0f}s all told "
          f"(metrics: {run / 'metrics.csv'}, weights: {run / 'last.pt'})")
    print()
    print("Next: the same commands on your own images or ImageNet:")
    print("  alexnet prepare SRC DATA            # SRC/train/<class>/*, SRC/val/<class>/*, or SRC/<class>/* "
          "with --val-fraction 0.1")
    print("  alexnet train --data DATA --out RUN # cuda-convnet-2012, for 256 px images; --preset small for 32-64 px")
    print("  alexnet evaluate RUN --tta 10crop")
    return {"center": center, "ten_crop": ten, "last_epoch": last}
