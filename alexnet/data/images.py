"""Reading one image file the way the paper's preprocessing wants it (Section 2).

Any size and any mode: EXIF orientation applied, converted to RGB (greyscale, palette, CMYK and
alpha images included), the shorter side rescaled to `size`, the central size x size patch kept.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps


def load_rgb(path: str | Path | BinaryIO, shorter_side: int | None = None) -> Image.Image:
    """The image at `path` (or in a file object), upright and in RGB.

    With `shorter_side`, a JPEG is decoded at the smallest of the format's 1/1, 1/2, 1/4, 1/8 scales
    whose shorter side is still at least that many pixels (the DCT does the first downscaling for
    free; a 500x375 photo prepared at 256 decodes at full size, a 2000x1500 one at 1/4).
    Raises OSError/ValueError on unreadable files.
    """
    with warnings.catch_warnings(), Image.open(path) as img:
        # Pillow's warnings on odd but readable files (large images below the bomb limit, palette
        # transparency) are not the user's concern: the file is read correctly.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", message="Palette images with Transparency")
        if shorter_side is not None and img.format == "JPEG":
            w, h = img.size
            scale = shorter_side / min(w, h)
            img.draft(img.mode if img.mode in ("RGB", "L") else None, (math.ceil(w * scale), math.ceil(h * scale)))
        img.load()
        img = ImageOps.exif_transpose(img)
        return to_8bit(img).convert("RGB")


WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_8bit(img: Image.Image) -> Image.Image:
    """Greyscale of more than 8 bits scaled to 0-255 (Pillow's own conversion clips it: a 16-bit image
    would come out nearly all white). 16-bit and 32-bit integer images are read as 16-bit (x 255/65535);
    float images as 0-1 when their largest value is at most 1, else as 0-255."""
    if img.mode in WIDE_INTEGER_MODES:
        wide = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(np.round(wide * (255 / 65535)), 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        wide = np.nan_to_num(np.asarray(img, dtype=np.float64))
        scale = 255.0 if wide.size and wide.max() <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.round(wide * scale), 0, 255).astype(np.uint8), "L")
    return img


# Past this many pixels the rescaled whole image is not made: a 700-byte PNG of 200,000 x 1 pixels would
# become 256 x 51,200,000 (39 GB). Ordinary photographs stay far below it (a 1:10 panorama at 256: 0.7 M).
MAX_RESCALED_PIXELS = 64 * 2**20


def rescale_and_crop(img: Image.Image, size: int) -> np.ndarray:
    """The paper's preparation: rescale so that the shorter side is `size` (bilinear, antialiased when
    shrinking), then the central size x size patch, as a uint8 (size, size, 3) array.

    An image whose rescaled whole would exceed MAX_RESCALED_PIXELS (an absurd aspect ratio) has only the
    patch's region rescaled (Pillow's `box`): the same sampling, within one grey level of the whole."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    if new[0] * new[1] > MAX_RESCALED_PIXELS:
        sx, sy = w / new[0], h / new[1]
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        return np.asarray(img.resize((size, size), Image.BILINEAR, box=box), dtype=np.uint8).copy()
    whole = img if new == (w, h) else img.resize(new, Image.BILINEAR)
    return np.asarray(whole, dtype=np.uint8)[top:top + size, left:left + size].copy()


def load_prepared(path: str | Path | BinaryIO, size: int, reduced_decode: bool = True) -> np.ndarray:
    """One file, prepared exactly as `alexnet prepare` stores it: (size, size, 3) uint8."""
    return rescale_and_crop(load_rgb(path, size if reduced_decode else None), size)


def read_error(path: str | Path, exc: BaseException) -> str:
    """A one-line description of why `path` could not be read."""
    if isinstance(exc, Image.DecompressionBombError):
        return f"{path}: image too large (over Pillow's decompression-bomb limit)"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{path}: cannot read image ({reason})"
