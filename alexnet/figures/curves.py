"""A run's learning curves from its metrics.csv: error rates and loss against epochs."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from ..errors import AlexNetError
from .draw import line_chart, stack


def read_metrics(run: str | Path) -> list[dict[str, float]]:
    path = Path(run) / "metrics.csv"
    if not path.is_file():
        raise AlexNetError(f"{path}: no metrics.csv in this run folder")
    try:
        with open(path, newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except (ValueError, TypeError) as exc:
        raise AlexNetError(f"{path}: not a metrics file written by alexnet train ({exc})") from None


def curves_figure(rows: list[dict[str, float]], title: str = "") -> Image.Image:
    epochs = [r["epoch"] for r in rows]
    errors = line_chart({"train top-1": (epochs, [100 * r["train_top1_error"] for r in rows]),
                         "val top-1": (epochs, [100 * r["val_top1_error"] for r in rows]),
                         "val top-5": (epochs, [100 * r["val_top5_error"] for r in rows])},
                        f"{title} error rates".strip(), "epoch", "error (%)")
    loss = line_chart({"train loss": (epochs, [r["train_loss"] for r in rows])},
                      f"{title} training loss".strip(), "epoch", "cross-entropy")
    return stack([errors, loss])
