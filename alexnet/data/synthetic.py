"""A generated image-folder dataset for the demo and the tests: ten classes of drawn shapes.

Learnable but not trivial: each image has random foreground and background colours (so colour
alone says nothing), a random size, position and small rotation, clutter lines, pixel noise, and a
random non-square size (so `prepare`'s rescale and crop matter). Files are JPEG and PNG, some in
greyscale or palette mode. Everything is a function of the seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("disc", "ring", "square", "frame", "triangle", "plus", "cross", "hstripes", "vstripes", "checker")


def _rotated(points: list[tuple[float, float]], cx: float, cy: float, angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float,
                color: tuple[int, int, int], width: int) -> None:
    box = [cx - r, cy - r, cx + r, cy + r]
    square = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if kind == "disc":
        draw.ellipse(box, fill=color)
    elif kind == "ring":
        draw.ellipse(box, outline=color, width=width)
    elif kind == "square":
        draw.polygon(_rotated(square, cx, cy, angle), fill=color)
    elif kind == "frame":
        draw.polygon(_rotated(square, cx, cy, angle), outline=color, width=width)
    elif kind == "triangle":
        tri = [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
        draw.polygon(_rotated(tri, cx, cy, angle), fill=color)
    elif kind in ("plus", "cross"):
        a = angle + (math.pi / 4 if kind == "cross" else 0.0)
        for arm in (0.0, math.pi / 2):
            dx, dy = r * math.cos(a + arm), r * math.sin(a + arm)
            draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=color, width=width)
    elif kind in ("hstripes", "vstripes", "checker"):
        period = max(3, int(r / 2))
        for i in range(int(cx - r), int(cx + r), period):
            for j in range(int(cy - r), int(cy + r), period):
                u, v = (i - int(cx - r)) // period, (j - int(cy - r)) // period
                on = {"hstripes": v % 2 == 0, "vstripes": u % 2 == 0, "checker": (u + v) % 2 == 0}[kind]
                if on:
                    draw.rectangle([i, j, i + period - 1, j + period - 1], fill=color)
    else:
        raise ValueError(kind)


def render(kind: str, rng: np.random.Generator) -> Image.Image:
    """One random image of class `kind`."""
    w, h = (int(v) for v in rng.integers(40, 73, size=2))
    side = min(w, h)
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 256, 3))
    while sum(abs(a - b) for a, b in zip(bg, fg)) < 160:  # keep the shape visible
        fg = tuple(int(v) for v in rng.integers(0, 256, 3))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):  # clutter
        pts = [tuple(float(v) for v in rng.uniform(0, [w, h])) for _ in range(2)]
        clutter = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line(pts, fill=clutter, width=1)
    r = side * rng.uniform(0.22, 0.36)
    cx = w / 2 + rng.uniform(-0.12, 0.12) * side
    cy = h / 2 + rng.uniform(-0.12, 0.12) * side
    angle = rng.uniform(-0.25, 0.25)
    _draw_shape(draw, kind, cx, cy, r, angle, fg, width=max(2, int(side / 12)))
    pixels = np.asarray(img, np.float32) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_shapes_dataset(root: str | Path, train_per_class: int = 200, val_per_class: int = 50,
                        seed: int = 0, classes: tuple[str, ...] = CLASSES) -> Path:
    """Write `root/train/<class>/*` and `root/val/<class>/*`; return root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for kind in classes:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                img = render(kind, rng)
                mode = rng.random()
                if mode < 0.05:
                    img = img.convert("L")           # greyscale files exist in the wild
                elif mode < 0.1:
                    img = img.convert("P")           # so do palette PNGs
                if i % 2 == 0 and img.mode != "P":
                    img.save(folder / f"{kind}_{i:05d}.jpg", quality=90)
                else:
                    img.save(folder / f"{kind}_{i:05d}.png")
    return root
