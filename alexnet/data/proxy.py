"""An ImageNet-like proxy: up to 1000 classes of generated 256 x 256 JPEGs, learnable only from pixels.

A class is a combination of three factors, each of ten values: the shape drawn (the demo's ten
shapes), its colour scheme (one of ten hue bands, saturated), and the background's texture (one of ten
patterns in two pale colours). A network must see all three to tell 1000 classes apart: no single
factor separates more than ten. Within a class, the shape's size, position, rotation, exact hue and
brightness, the background's colours, phase and scale, and pixel noise all vary. `--classes N`
takes N classes spread over all factor values (a fixed shuffle of the 1000 combinations).

Written as an image-folder tree (OUT/train/<class>/*.jpg, OUT/val/<class>/*.jpg) for `alexnet prepare`,
deterministic in the seed. Generation goes to OUT.partial, one class at a time with a marker per
finished class (an interrupted run continues there), and the folder gets its final name at the end:
nothing half-written looks complete.
"""

from __future__ import annotations

import colorsys
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import AlexNetError
from ..progress import Progress
from .synthetic import CLASSES as SHAPES, _draw_shape
from .workers import map_in_processes, usable_cores

SCHEMES = ("red", "orange", "yellow", "lime", "green", "teal", "cyan", "blue", "purple", "magenta")
TEXTURES = ("plain", "hlines", "vlines", "diagonal", "grid", "dots", "waves", "rings", "checks", "noise")
MAX_CLASSES = len(SHAPES) * len(SCHEMES) * len(TEXTURES)


def proxy_classes(count: int = MAX_CLASSES) -> list[tuple[str, str, str]]:
    """The first `count` (shape, scheme, texture) combinations of a fixed shuffle of all 1000."""
    if not 1 <= count <= MAX_CLASSES:
        raise AlexNetError(f"--classes must be from 1 to {MAX_CLASSES}, got {count}")
    combos = [(s, c, t) for s in SHAPES for c in SCHEMES for t in TEXTURES]
    order = np.random.default_rng(2012).permutation(len(combos))
    return [combos[i] for i in order[:count]]


def class_name(combo: tuple[str, str, str]) -> str:
    return "-".join(combo)


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) mask in [0, 1] of the pattern, at a random scale and phase."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = size / rng.uniform(6, 14)
    phase = rng.uniform(0, 2 * math.pi)
    wave = lambda t: 0.5 + 0.5 * np.sin(2 * math.pi * t / period + phase)  # noqa: E731
    if kind == "plain":
        return np.zeros((size, size), np.float32)
    if kind == "hlines":
        return (wave(y) > 0.7).astype(np.float32)
    if kind == "vlines":
        return (wave(x) > 0.7).astype(np.float32)
    if kind == "diagonal":
        return (wave((x + y) / math.sqrt(2)) > 0.7).astype(np.float32)
    if kind == "grid":
        return ((wave(x) > 0.85) | (wave(y) > 0.85)).astype(np.float32)
    if kind == "dots":
        return ((wave(x) > 0.6) & (wave(y) > 0.6)).astype(np.float32)
    if kind == "waves":
        return (wave(y + period / 4 * np.sin(2 * math.pi * x / period)) > 0.7).astype(np.float32)
    if kind == "rings":
        cy, cx = rng.uniform(0, size, 2)
        return (wave(np.hypot(x - cx, y - cy)) > 0.6).astype(np.float32)
    if kind == "checks":
        return ((wave(x) > 0.5) ^ (wave(y) > 0.5)).astype(np.float32)
    if kind == "noise":  # blotches: smoothed noise, thresholded
        coarse = rng.random((size // 16 + 2, size // 16 + 2)).astype(np.float32)
        smooth = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR))
        return (smooth > 128).astype(np.float32)
    raise ValueError(f"unknown texture {kind!r}")


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255


def render_proxy(combo: tuple[str, str, str], size: int, rng: np.random.Generator) -> tuple[Image.Image, float]:
    """One image of class `combo`, and the hue (0-1) its shape was drawn in."""
    shape, scheme, texture = combo
    band = SCHEMES.index(scheme) / len(SCHEMES)
    hue = band + rng.uniform(0.2, 0.8) / len(SCHEMES)  # inside the band, away from its edges
    pale = [_rgb(rng.random(), rng.uniform(0, 0.25), rng.uniform(0.35, 0.95)) for _ in range(2)]
    mask = _texture(texture, size, rng)[..., None]
    background = pale[0] * (1 - mask) + pale[1] * mask
    img = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    colour = tuple(int(v) for v in _rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0)))
    r = size * rng.uniform(0.18, 0.3)
    cx, cy = (size / 2 + rng.uniform(-0.18, 0.18, 2) * size).tolist()
    _draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, rng.uniform(-0.3, 0.3), colour, width=max(3, size // 24))
    pixels = np.asarray(img, np.float32) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), hue


def _make_class(task: tuple[Path, int, tuple[str, str, str], int, int, int, int]) -> int:
    """Worker: every image of one class in both splits, then its marker; returns the image count."""
    root, index, combo, train, val, size, seed = task
    name = class_name(combo)
    marker = root / f".done-{name}"
    if marker.exists():
        return train + val
    for split, count in (("train", train), ("val", val)):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng((seed, index, 0 if split == "train" else 1))
        for i in range(count):
            render_proxy(combo, size, rng)[0].save(folder / f"{name}_{i:05d}.jpg", quality=90)
    marker.write_text("")  # after every image of the class: a rerun skips it
    return train + val


def _make_classes(tasks: list) -> list[int]:
    return [_make_class(task) for task in tasks]


def make_proxy_dataset(out: str | Path, classes: int = MAX_CLASSES, train_per_class: int = 100,
                       val_per_class: int = 10, size: int = 256, seed: int = 0, workers: int | None = None,
                       progress: bool = True) -> Path:
    """Write the proxy as an image-folder tree at `out`; return it."""
    out = Path(out)
    if out.exists():
        raise AlexNetError(f"{out}: already exists; choose a new folder for the proxy dataset")
    for name, value, least in (("--train-per-class", train_per_class, 1), ("--val-per-class", val_per_class, 1),
                               ("--size", size, 32)):
        if value < least:
            raise AlexNetError(f"{name} must be at least {least}, got {value}")
    combos = proxy_classes(classes)
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    tasks = [(partial, i, c, train_per_class, val_per_class, size, seed) for i, c in enumerate(combos)]
    workers = workers if workers is not None else min(16, usable_cores())
    bar = Progress(len(combos) * (train_per_class + val_per_class), "proxy", enabled=progress)
    counts = map(_make_class, tasks) if workers <= 1 else map_in_processes(
        _make_classes, tasks, workers, chunk=1, died=f"a worker process died (killed for lack of memory?); the "
        f"classes already written are kept in {partial}: run the same command again to continue")
    for count in counts:
        bar.update(count)
    bar.close()
    for marker in partial.glob(".done-*"):
        marker.unlink()
    os.replace(partial, out)
    return out

