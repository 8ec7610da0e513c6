"""Charts drawn with matplotlib, saved as a PNG with an SVG copy beside it (for papers and slides).

Learning curves, Figure 1 and the ablation bars go through here; the image grids (kernels, predictions,
neighbours) stay in Pillow, where a picture is just pixels. No pyplot: each chart is its own `Figure`,
so nothing global (backend, open figures) is touched and charts can be drawn from any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..files import atomic_file
from .draw import SOFTWARE

# Text stays text in the SVG (editable, searchable); fixed ids and no date make the file reproducible.
SVG_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "alexnet"}


@dataclass
class Line:
    """One named curve y(x); NaN values (a skipped validation, say) are left out."""
    name: str
    x: Sequence[float]
    y: Sequence[float]
    dashed: bool = False


@dataclass
class Panel:
    """One set of axes: its curves, labels, and an optional labelled horizontal reference line."""
    title: str
    xlabel: str
    ylabel: str
    lines: list[Line]
    ylim: tuple[float, float] | None = None
    reference: tuple[float, str] | None = None    # (y, label), e.g. Figure 1's 25% target, or chance
    integer_x: bool = True                        # epochs: ticks at whole numbers only
    value_format: str = "{:.3g}"                  # how the legend gives each curve's last value


def _finite(line: Line) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(line.x, line.y) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def draw_panel(ax: Axes, panel: Panel) -> None:
    xs_all = []
    for line in panel.lines:
        xs, ys = _finite(line)
        xs_all += xs
        label = f"{line.name} (last {panel.value_format.format(ys[-1])})" if ys else f"{line.name} (no values)"
        ax.plot(xs, ys, linestyle="--" if line.dashed else "-", marker="o", markersize=3.5, linewidth=1.6,
                label=label)
    if panel.reference is not None:
        y, label = panel.reference
        ax.axhline(y, color="0.4", linestyle=":", linewidth=1.2, label=label)
    if panel.integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if xs_all and max(xs_all) - min(xs_all) < 1:  # one epoch: a visible window around the single point
        ax.set_xlim(min(xs_all) - 0.5, max(xs_all) + 0.5)
    if panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def line_chart(panels: Sequence[Panel], title: str = "", panel_size: tuple[float, float] = (5.5, 3.8)) -> Figure:
    """The panels side by side under one title."""
    figure = Figure(figsize=(panel_size[0] * len(panels), panel_size[1]), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        draw_panel(ax, panel)
    if title:
        figure.suptitle(title)
    return figure


def spread_chart(names: Sequence[str], values: Sequence[Sequence[float]], title: str, ylabel: str,
                 reference: tuple[float, str] | None = None) -> Figure:
    """For each name a dot per value (one per seed), a bar across at their mean and a line over their range:
    how an ablation table from a few seeds should be looked at. The axis is not forced to start at zero,
    so differences of a point or two stay visible."""
    figure = Figure(figsize=(max(4.5, 1.1 * len(names) + 2.5), 3.8), layout="constrained")
    ax = figure.subplots()
    for i, vals in enumerate(values):
        first = i == 0
        ax.vlines(i, min(vals), max(vals), color="#9ecae1", linewidth=6, label="range over seeds" if first else None)
        ax.plot([i] * len(vals), vals, "o", color="#08519c", markersize=4, label="each seed" if first else None)
        ax.plot([i], [sum(vals) / len(vals)], "_", color="#d62728", markersize=22, markeredgewidth=2,
                label="mean" if first else None)
    if reference is not None:
        ax.axhline(reference[0], color="0.4", linestyle=":", linewidth=1.2, label=reference[1])
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return figure


def save_chart(figure: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write `figure` to `path` (a .png) and its SVG copy beside it, each atomically; return the PNG's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(SVG_STYLE):
        with atomic_file(path, "wb", what="chart") as f:
            figure.savefig(f, format="png", dpi=dpi, metadata={"Software": SOFTWARE})
        with atomic_file(path.with_suffix(".svg"), "wb", what="chart") as f:
            figure.savefig(f, format="svg", metadata={"Date": None, "Creator": SOFTWARE})
    return path
