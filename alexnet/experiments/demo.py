"""`alexnet demo`: the whole pipeline on generated data, in a few minutes on a laptop CPU.

Generate ten classes of drawn shapes as real image files, prepare them as `alexnet prepare` does,
train the `small` preset with the paper's recipe, and evaluate with ten-patch testing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..data.prepare import prepare_dataset
from ..data.synthetic import CLASSES, make_shapes_dataset
from ..errors import AlexNetError
from ..files import write_text
from ..evaluation.evaluate import evaluate_checkpoint
from ..config import TrainConfig
from ..training.loop import train

MARKER = ".alexnet-demo"
# Sized to finish in under five minutes on 2 CPU cores (see README, "The demo"). Shared, throttled
# machines run the same steps 3-10x slower at times, so training also stops at a time budget.
DEMO_TRAIN_PER_CLASS = 200
DEMO_VAL_PER_CLASS = 30
DEMO_SIZE = 32
DEMO_EPOCHS = 8
DEMO_DEADLINE_S = 220.0     # the whole demo, start to result; Python and torch start-up (10-30 s) come on top
FINAL_EVALUATION_S = 30.0   # kept free for the closing centre + ten-patch evaluation


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

    epochs_given = epochs is not None  # an explicit --epochs is honoured whatever it takes
    epochs = epochs or DEMO_EPOCHS
    print(f"[3/4] training the `small` preset for up to {epochs} epochs with the paper's recipe "
          f"(two columns, LRN, overlapping pooling, dropout, PaperSGD, random crops + flips + PCA noise) -> {run}")
    budget = None
    if not epochs_given:
        budget = max(30.0, DEMO_DEADLINE_S - FINAL_EVALUATION_S - (time.monotonic() - started))
    last = train(TrainConfig(data=data, out=run, preset="small", epochs=epochs, seed=seed, device="cpu",
                               progress=progress, time_limit=budget))

    print("[4/4] evaluating with ten-patch testing (4 corners + centre, and their reflections)")
    center = evaluate_checkpoint(str(run), tta="center", device="cpu")
    ten = evaluate_checkpoint(str(run), tta="10crop", device="cpu")
    chance = 1 - 1 / n_classes
    print()
    print(f"Result on {ten['images']} validation images of {n_classes} classes (chance: {chance:.0%} top-1 error):")
    print(f"  centre patch : top-1 error {center['top1_error']:6.2%}   top-5 error {center['top5_error']:6.2%}")
    print(f"  ten patches  : top-1 error {ten['top1_error']:6.2%}   top-5 error {ten['top5_error']:6.2%}")
    if last["stopped_because"].startswith("time limit"):
        print(f"  (training stopped early to keep the demo under five minutes: {last['stopped_because']})")
    print(f"  trained {last['epoch']} epoch{'s' if last['epoch'] != 1 else ''} in {time.monotonic() - started:.0f}s all told "
          f"(metrics: {run / 'metrics.csv'}, weights: {run / 'last.pt'})")
    print()
    print("Next: the same commands on your own images or ImageNet:")
    print("  alexnet prepare SRC DATA            # SRC/train/<class>/*.jpg, SRC/val/<class>/*.jpg; --size 256")
    print("  alexnet train --data DATA --preset paper --out RUN    # paper: 256 px images; small: 32-64 px")
    print("  alexnet evaluate RUN --tta 10crop")
    return {"center": center, "ten_crop": ten, "last_epoch": last}
