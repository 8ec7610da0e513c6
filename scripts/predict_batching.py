"""`alexnet predict` on a folder: its images through the network together (IMAGES_PER_PASS at a time)
against one at a time (the plain way, and what predict did before), in one run, on the same files.

Times `predict_files`, the function `alexnet predict` runs, from the checkpoint to the last result,
reading and decoding the files included. The network is `torchvision` (61 M parameters, 224 px crops
of 256 px images) freshly initialised: its speed does not depend on what it has learned.

    python scripts/predict_batching.py [--images 64] [--tta 10crop] [--device cpu] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import alexnet.evaluation.predict as predict_module
from alexnet.evaluation.predict import predict_files
from alexnet.export.convert import convert_torchvision
from alexnet.model import build_model


def make_run(folder: Path) -> Path:
    """A run as `alexnet convert torchvision` writes one, of a fresh network."""
    weights, names = folder / "weights.pth", folder / "classes.txt"
    torch.save(build_model("torchvision", num_classes=1000).state_dict(), weights)
    names.write_text("\n".join(f"class {i}" for i in range(1000)) + "\n")
    return convert_torchvision(str(weights), str(folder / "run"), classes_file=str(names), log=lambda line: None)


def make_photos(folder: Path, count: int) -> list[str]:
    """JPEGs of 500 x 375, the size of a typical ILSVRC photo."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"photo{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def images_per_second(run: Path, photos: list[str], per_pass: int, tta: str, device: str) -> float:
    predict_module.IMAGES_PER_PASS = per_pass
    started = time.perf_counter()
    done = sum(1 for _ in predict_files(str(run), photos, tta=tta, device=device))
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--tta", default="10crop", choices=["center", "10crop"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    batched = predict_module.IMAGES_PER_PASS
    with tempfile.TemporaryDirectory() as tmp:
        run, photos = make_run(Path(tmp)), make_photos(Path(tmp), args.images)
        print(f"{args.images} JPEGs of 500x375, preset torchvision, {args.tta}, {args.device}, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        for repeat in range(args.repeats):  # alternated, so that a slower minute of the host hits both
            one = images_per_second(run, photos, 1, args.tta, args.device)
            many = images_per_second(run, photos, batched, args.tta, args.device)
            print(f"run {repeat + 1}: one at a time {one:.1f} images/s; {batched} at a time {many:.1f} images/s "
                  f"({many / one:.2f}x)")


if __name__ == "__main__":
    main()
