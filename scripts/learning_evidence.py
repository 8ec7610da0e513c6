"""Does a full-size preset leave the loss plateau of its initialisation? Evidence for the default preset.

Trains each preset at 224 px (crops of 256) from its initialisation with `alexnet train` itself (the
recipe users run: batch 128, augmentation, dropout), logging the mean training loss every few steps,
then reports for each run the first logged window whose loss is below ln(classes) - 0.5 and draws the
curves. A run is one epoch of its dataset, so the dataset's size sets the budget (48,000 images: 375
steps, about 30 minutes on 2 CPU cores).

    # the data: the 1000-class proxy and a 100-class subset of it (the first 100 of its classes)
    alexnet proxy SRC1000 --classes 1000 --train-per-class 48 --val-per-class 2
    alexnet prepare SRC1000 DATA1000
    alexnet proxy SRC100 --classes 100 --train-per-class 480 --val-per-class 20
    alexnet prepare SRC100 DATA100
    python scripts/learning_evidence.py run --data DATA1000 --out RUNS/1000 --presets paper cuda-convnet-2012
    python scripts/learning_evidence.py run --data DATA100 --out RUNS/100 --presets paper cuda-convnet-2012
    python scripts/learning_evidence.py report RUNS/1000 RUNS/100 --chart benchmarks/learning_cpu.png
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> None:
    """`alexnet train` for each preset, one after the other; a finished run is left as it is."""
    out = Path(args.out)
    for preset in args.presets:
        folder = out / preset
        if (folder / "metrics.csv").exists():
            print(f"{folder}: done already")
            continue
        command = [sys.executable, "-m", "alexnet", "train", "--data", args.data, "--preset", preset,
                   "--out", str(folder), "--epochs", str(args.epochs), "--log-steps", str(args.log_steps),
                   "--device", args.device, "--checkpoint-every", "50", "--quiet", *args.train_args]
        if (folder / "last.pt").exists():
            command.append("--resume")
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)


def summarise(folder: Path) -> dict:
    """One run's figures: classes, steps logged, the first step under ln(classes) - 0.5, the losses."""
    config = json.loads((folder / "config.json").read_text())
    classes = len(config["classes"])
    rows = list(csv.DictReader(open(folder / "steps.csv")))
    steps = [int(r["global_step"]) for r in rows]
    losses = [float(r["train_loss"]) for r in rows]
    target = math.log(classes) - 0.5
    first = next((s for s, loss in zip(steps, losses) if loss < target), None)
    metrics = list(csv.DictReader(open(folder / "metrics.csv"))) if (folder / "metrics.csv").exists() else []
    return {"preset": config["preset"], "classes": classes, "steps": steps, "losses": losses, "target": target,
            "first_below": first, "last_loss": losses[-1] if losses else math.nan,
            "first_loss": losses[0] if losses else math.nan,
            "val_top1": float(metrics[-1]["val_top1_error"]) if metrics else math.nan,
            "val_top5": float(metrics[-1]["val_top5_error"]) if metrics else math.nan,
            "batch": config["recipe"]["batch_size"]}


def report(args: argparse.Namespace) -> None:
    runs = [summarise(f) for folder in args.folders for f in sorted(Path(folder).iterdir())
            if (f / "steps.csv").exists()]
    print("| classes | preset | steps (batch) | loss, first window -> last | first window under ln(classes) - 0.5 | "
          "val top-1 / top-5 error after the epoch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in runs:
        under = (f"step {r['first_below']}" if r["first_below"] is not None
                 else f"not within {r['steps'][-1]} steps")
        print(f"| {r['classes']} | `{r['preset']}` | {r['steps'][-1]} ({r['batch']}) | {r['first_loss']:.3f} -> "
              f"{r['last_loss']:.3f} (ln {r['classes']} = {math.log(r['classes']):.3f}) | {under} | "
              f"{r['val_top1']:.2%} / {r['val_top5']:.2%} |")
    if args.chart:
        draw(runs, args.chart)


def draw(runs: list[dict], path: str) -> None:
    from alexnet.drawing.charts import Line, Panel, line_chart, save_chart

    panels = []
    for classes in sorted({r["classes"] for r in runs}, reverse=True):
        mine = [r for r in runs if r["classes"] == classes]
        panels.append(Panel(title=f"{classes} classes", xlabel="step", ylabel="training loss (mean of the window)",
                            lines=[Line(r["preset"], r["steps"], r["losses"]) for r in mine],
                            reference=(math.log(classes) - 0.5, f"ln {classes} - 0.5"), integer_x=False))
    save_chart(line_chart(panels, title="Leaving the initial plateau at 224 px (proxy data, 2 CPU cores)"), path)
    print(f"chart: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train each preset for --epochs on --data")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--presets", nargs="+", default=["paper", "cuda-convnet-2012"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--log-steps", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("train_args", nargs="*", help="more `alexnet train` flags, after --")
    p.set_defaults(func=run)
    p = sub.add_parser("report", help="the table (markdown) and the chart of finished runs")
    p.add_argument("folders", nargs="+", help="folders given to `run --out`")
    p.add_argument("--chart", default=None, help="PNG to draw the curves into (an SVG copy beside it)")
    p.set_defaults(func=report)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
