"""Figure 4 (right): query images and the training images nearest to them in the last hidden layer."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .draw import stack, tile


def nearest(queries: torch.Tensor, pool: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, indices) of the k pool vectors nearest to each query in Euclidean distance."""
    d = torch.cdist(queries.double(), pool.double())
    k = min(k, pool.shape[0])
    values, indices = d.topk(k, dim=1, largest=False)
    return values, indices


def neighbors_figure(query_pictures: Sequence[np.ndarray], neighbor_pictures: Sequence[Sequence[np.ndarray]],
                     scale: int = 1) -> Image.Image:
    """One row per query: the query, a gap, then its neighbours nearest first."""
    rows = []
    for query, found in zip(query_pictures, neighbor_pictures):
        rows.append(stack([tile([query], 1, scale), tile(list(found), max(1, len(found)), scale)],
                          vertical=False, gap=14))
    return stack(rows, gap=6)
