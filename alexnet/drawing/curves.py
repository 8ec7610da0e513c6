"""A run's learning curves from the rows of its metrics.csv: error rates and loss against epochs."""

from __future__ import annotations

from PIL import Image

from .draw import line_chart, stack


def curves_figure(rows: list[dict[str, float]], title: str = "") -> Image.Image:
    epochs = [r["epoch"] for r in rows]
    errors = line_chart({"train top-1": (epochs, [100 * r["train_top1_error"] for r in rows]),
                         "val top-1": (epochs, [100 * r["val_top1_error"] for r in rows]),
                         "val top-5": (epochs, [100 * r["val_top5_error"] for r in rows])},
                        f"{title} error rates".strip(), "epoch", "error (%)")
    loss = line_chart({"train loss": (epochs, [r["train_loss"] for r in rows])},
                      f"{title} training loss".strip(), "epoch", "cross-entropy")
    return stack([errors, loss])
