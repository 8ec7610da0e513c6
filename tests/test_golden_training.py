"""The same weights after the same steps: a run through the command line, compared with the figures the
code gave before the training room was rebuilt (tests/golden_training.json, written by this file's
`run_golden` on 2026-11-26, torch 2.13.0+cpu). Two epochs of 5 steps (augmentation, colour noise,
dropout, the schedule, validation) then a third resumed from a mid-epoch checkpoint: any change to
what training computes moves these numbers far beyond the tolerance, which only absorbs float32
rounding that differs between CPUs."""

import csv
import json
from pathlib import Path

import pytest
import torch

from alexnet.cli.main import main
from alexnet.data.prepare import prepare_dataset
from alexnet.data.synthetic import make_shapes_dataset
from alexnet.runs.checkpoint import load_checkpoint

GOLDEN = Path(__file__).with_name("golden_training.json")


def run_golden(tmp: Path) -> dict:
    torch.set_num_threads(1)
    src = make_shapes_dataset(tmp / "src", 20, 4, seed=3, classes=("disc", "square", "hstripes", "vstripes"))
    prepare_dataset(src, tmp / "data", size=32, workers=0, progress=False)
    common = ["train", "--data", str(tmp / "data"), "--preset", "small", "--out", str(tmp / "run"), "--device", "cpu",
              "--batch-size", "16", "--seed", "5", "--workers", "0", "--quiet"]
    assert main(common + ["--epochs", "2"]) == 0
    assert main(common + ["--epochs", "3", "--resume", "--checkpoint-every", "2"]) == 0
    ckpt = load_checkpoint(tmp / "run")
    with open(tmp / "run" / "metrics.csv") as f:
        metrics = [{k: float(row[k]) for k in ("train_loss", "train_top1_error", "val_top1_error", "lr")}
                   for row in csv.DictReader(f)]
    velocity = {str(i): s["velocity"] for i, s in ckpt["optimizer"]["state"].items()}
    return {"weights": {k: [v.double().sum().item(), v.double().norm().item()] for k, v in ckpt["model"].items()},
            "velocity": {k: [v.double().sum().item(), v.double().norm().item()] for k, v in velocity.items()},
            "metrics": metrics, "epoch": ckpt["epoch"], "schedule": ckpt["schedule"]}


def test_training_computes_what_it_computed_before(tmp_path):
    want, got = json.loads(GOLDEN.read_text()), run_golden(tmp_path)
    assert got["epoch"] == want["epoch"] == 3 and got["schedule"] == want["schedule"]
    for part in ("weights", "velocity"):
        assert set(got[part]) == set(want[part])
        for name, (total, norm) in want[part].items():
            assert got[part][name][1] == pytest.approx(norm, rel=1e-4, abs=1e-9), f"{part} {name} norm"
            assert got[part][name][0] == pytest.approx(total, rel=1e-3, abs=1e-6 * max(1.0, norm)), f"{part} {name} sum"
    for a, b in zip(got["metrics"], want["metrics"], strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
