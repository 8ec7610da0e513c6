"""Reading one image file the way the paper's preprocessing wants it (Section 2).

Any size and any mode: EXIF orientation applied, converted to RGB (greyscale, palette, CMYK and
alpha images included), the shorter side rescaled to `size`, the central size x size patch kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def load_rgb(path: str | Path) -> Image.Image:
    """The image at `path`, upright and in RGB. Raises OSError/ValueError on unreadable files."""
    with Image.open(path) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        return img.convert("RGB")


def resize_shorter_side(img: Image.Image, size: int) -> Image.Image:
    """Rescale so that the shorter side is `size` (bilinear, antialiased when shrinking)."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img if new == (w, h) else img.resize(new, Image.BILINEAR)


def center_crop_array(img: Image.Image, size: int) -> np.ndarray:
    """The central size x size patch as a uint8 (size, size, 3) array."""
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img, dtype=np.uint8)[top:top + size, left:left + size].copy()


def load_prepared(path: str | Path, size: int) -> np.ndarray:
    """One file, prepared exactly as `alexnet prepare` stores it: (size, size, 3) uint8."""
    return center_crop_array(resize_shorter_side(load_rgb(path), size), size)


def read_error(path: str | Path, exc: BaseException) -> str:
    """A one-line description of why `path` could not be read."""
    if isinstance(exc, Image.DecompressionBombError):
        return f"{path}: image too large (over Pillow's decompression-bomb limit)"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{path}: cannot read image ({reason})"
