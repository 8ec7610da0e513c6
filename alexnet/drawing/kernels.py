"""Figure 3: the conv1 kernels as pictures, one block per column, and how colour-specific each column is."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .draw import caption, stack, tile


def kernel_pictures(weights: np.ndarray) -> list[np.ndarray]:
    """(K, 3, k, k) float weights -> K uint8 (k, k, 3) pictures, each scaled symmetrically about 0
    by its own largest magnitude (grey 128 is zero), as kernel visualisations usually are."""
    pictures = []
    for w in weights:
        peak = float(np.abs(w).max()) or 1.0
        pictures.append(np.clip(128 + 127 * w.transpose(1, 2, 0) / peak, 0, 255).astype(np.uint8))
    return pictures


def colour_specificity(weights: np.ndarray) -> np.ndarray:
    """Per kernel, the fraction of its energy (sum of squares) that differs between colour channels:
    ||w - grey(w)||^2 / ||w||^2 with grey(w) the mean of the three channels at each pixel.

    0 for a kernel that treats R, G and B alike (colour-agnostic); larger for colour-opponent or
    single-colour kernels (2/3 for a kernel that sees one channel only, 1 for R = -G with B = 0).
    """
    w = weights.astype(np.float64)
    grey = w.mean(axis=1, keepdims=True)
    total = (w ** 2).sum(axis=(1, 2, 3))
    return ((w - grey) ** 2).sum(axis=(1, 2, 3)) / np.maximum(total, 1e-30)


def kernels_figure(weights: np.ndarray, columns: int, per_row: int = 16, scale: int = 4,
                   initial: np.ndarray | None = None, title: str = "") -> tuple[Image.Image, list[float]]:
    """The grid of Figure 3 (column 1's kernels above column 2's) and each column's mean colour specificity.

    `initial`: the same layer's weights before training. Random kernels are already partly colour-specific
    (about 2/3 for independent channels), so a trained column's number means something only beside them.
    """
    per_column = len(weights) // columns
    blocks, means = [], []
    for c in range(columns):
        part = weights[c * per_column:(c + 1) * per_column]
        spec = float(colour_specificity(part).mean())
        means.append(spec)
        text = f"column {c + 1}: {len(part)} kernels, colour specificity {spec:.2f}"
        if initial is not None:
            text += f" (at initialisation {colour_specificity(initial[c * per_column:(c + 1) * per_column]).mean():.2f})"
        grid = tile(kernel_pictures(part), min(per_row, len(part)), scale=max(1, scale * 11 // part.shape[-1]))
        blocks.append(caption(grid, text))
    picture = stack(blocks, gap=16)
    return (caption(picture, title, size=16) if title else picture), means
