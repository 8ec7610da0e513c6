"""A run's learning curves from the rows of its metrics.csv: error rates and loss against epochs, with
chance marked, so that a flat line at chance reads as "not learning"."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from .charts import Line, Panel, line_chart


def curves_figure(rows: list[dict[str, float]], title: str = "", classes: int | None = None) -> Figure:
    epochs = [r["epoch"] for r in rows]

    def percent(key: str) -> list[float]:
        return [100 * r[key] for r in rows]

    chance = classes is not None and classes > 1
    errors = Panel("error rates", "epoch", "error (%)",
                   [Line("train top-1", epochs, percent("train_top1_error")),
                    Line("val top-1", epochs, percent("val_top1_error")),
                    Line("val top-5", epochs, percent("val_top5_error"), dashed=True)],
                   reference=(100 * (1 - 1 / classes), f"chance, top-1 ({100 * (1 - 1 / classes):.1f}%)")
                   if chance else None, value_format="{:.1f}%")
    loss = Panel("training loss", "epoch", "cross-entropy", [Line("train loss", epochs, [r["train_loss"] for r in rows])],
                 reference=(math.log(classes), f"chance, ln {classes} ({math.log(classes):.3f})") if chance else None,
                 value_format="{:.3f}")
    count = f"{len(rows)} epoch" + ("" if len(rows) == 1 else "s")
    return line_chart([errors, loss], f"{title + ': ' if title else ''}learning curves, {count}")
