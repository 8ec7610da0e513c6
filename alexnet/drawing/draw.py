"""Small picture helpers on Pillow: tiled image grids for Figures 3 and 4, captions, and the atomic PNG write.

Charts (curves, Figure 1, ablations) are matplotlib's, in charts.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from ..files import atomic_file

WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)


def font(size: int = 14) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed bitmap size
        return ImageFont.load_default()


# Written into every picture and chart (PNG's Software, SVG's creator), near the file's start: how a
# picture of ours is told from a file of the user's that has its name (files.refuse_to_replace_foreign).
SOFTWARE = "alexnet figures"


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write `image` to `path` atomically, so no half-written PNG is ever left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    with atomic_file(path, "wb", what="picture") as f:
        image.save(f, format="PNG", pnginfo=info)
    return path


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
