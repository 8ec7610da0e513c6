"""Small PNG drawing helpers on Pillow alone (no plotting library is required).

Line charts for learning curves and Figure 1, tiled image grids for Figures 3 and 4, and labelled
probability bars. Pictures are built as `PIL.Image` objects and written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..files import atomic_file

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)


def font(size: int = 14) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed bitmap size
        return ImageFont.load_default()


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write `image` to `path` atomically, so no half-written PNG is ever left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb", what="picture") as f:
        image.save(f, format="PNG")
    return path


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, xlabel: str,
               ylabel: str, size: tuple[int, int] = (640, 420), hline: float | None = None,
               ylim: tuple[float, float] | None = None, dashed: Sequence[str] = ()) -> Image.Image:
    """Lines y(x) for each named series, with axes, ticks, a legend and an optional horizontal line."""
    width, height = size
    left, right, top, bottom = 70, 20, 40, 55
    image = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(image)
    xs = [x for xv, _ in series.values() for x in xv]
    ys = [y for _, yv in series.values() for y in yv if math.isfinite(y)]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = ylim if ylim else ((min(ys + ([hline] if hline is not None else [])),
                                 max(ys + ([hline] if hline is not None else []))) if ys else (0.0, 1.0))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom))

    small = font(12)
    draw.rectangle([left, top, width - right, height - bottom], outline=BLACK)
    for t in _nice_ticks(y0, y1):
        _, y = px(x0, t)
        draw.line([left - 4, y, left, y], fill=BLACK)
        draw.line([left + 1, y, width - right - 1, y], fill=(235, 235, 235))
        draw.text((left - 6, y), f"{t:g}", fill=BLACK, font=small, anchor="rm")
    for t in _nice_ticks(x0, x1):
        x, _ = px(t, y0)
        draw.line([x, height - bottom, x, height - bottom + 4], fill=BLACK)
        draw.text((x, height - bottom + 6), f"{t:g}", fill=BLACK, font=small, anchor="ma")
    if hline is not None and y0 <= hline <= y1:
        _, y = px(x0, hline)
        for xa in range(left, width - right, 8):
            draw.line([xa, y, min(xa + 4, width - right), y], fill=(120, 120, 120))
    for i, (name, (xv, yv)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        points = [px(x, y) for x, y in zip(xv, yv) if math.isfinite(y)]
        if name in dashed:
            for a, b in zip(points, points[1:]):
                for f in np.arange(0, 1, 0.2):
                    draw.line([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f,
                               a[0] + (b[0] - a[0]) * (f + 0.1), a[1] + (b[1] - a[1]) * (f + 0.1)],
                              fill=colour, width=2)
        elif len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colour)
        ly = top + 8 + 18 * i
        draw.line([width - right - 150, ly, width - right - 125, ly], fill=colour, width=3)
        draw.text((width - right - 120, ly), name, fill=BLACK, font=small, anchor="lm")
    draw.text((width / 2, 12), title, fill=BLACK, font=font(15), anchor="ma")
    draw.text(((left + width - right) / 2, height - 20), xlabel, fill=BLACK, font=small, anchor="ma")
    label = Image.new("RGB", (height, 20), WHITE)
    ImageDraw.Draw(label).text((height / 2, 10), ylabel, fill=BLACK, font=small, anchor="mm")
    image.paste(label.rotate(90, expand=True), (4, 0))
    return image


def tile(images: Sequence[np.ndarray], columns: int, scale: int = 1, gap: int = 2,
         background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Equal-sized HxWx3 uint8 arrays in a grid of `columns`, each enlarged `scale` times."""
    if not images:
        return Image.new("RGB", (1, 1), background)
    h, w = images[0].shape[:2]
    h, w = h * scale, w * scale
    rows = (len(images) + columns - 1) // columns
    grid = Image.new("RGB", (columns * (w + gap) + gap, rows * (h + gap) + gap), background)
    for i, array in enumerate(images):
        cell = Image.fromarray(np.ascontiguousarray(array)).resize((w, h), Image.NEAREST)
        grid.paste(cell, (gap + (i % columns) * (w + gap), gap + (i // columns) * (h + gap)))
    return grid


def stack(parts: Sequence[Image.Image], vertical: bool = True, gap: int = 10,
          background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Images one below (or beside) the other."""
    if vertical:
        size = (max(p.width for p in parts), sum(p.height for p in parts) + gap * (len(parts) - 1))
    else:
        size = (sum(p.width for p in parts) + gap * (len(parts) - 1), max(p.height for p in parts))
    canvas = Image.new("RGB", size, background)
    offset = 0
    for p in parts:
        canvas.paste(p, (0, offset) if vertical else (offset, 0))
        offset += (p.height if vertical else p.width) + gap
    return canvas


def caption(image: Image.Image, text: str, size: int = 14) -> Image.Image:
    """`image` with a line of text above it."""
    band = Image.new("RGB", (max(image.width, 8 * len(text)), size + 10), WHITE)
    ImageDraw.Draw(band).text((4, 4), text, fill=BLACK, font=font(size))
    return stack([band, image], gap=0)
