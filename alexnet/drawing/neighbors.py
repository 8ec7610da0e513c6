"""Figure 4 (right): query images and the training images nearest to them in the last hidden layer,
labelled: which column is the query, each image's class, and which neighbours share the query's class."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from .draw import BLACK, WHITE, font, stack

SAME, OTHER, QUERY = (44, 160, 44), (214, 39, 40), (31, 119, 180)   # frame colours
TILE = 80        # pixels a side: the picture stays a few hundred KB for 256 px images


def nearest(queries: torch.Tensor, pool: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, indices) of the k pool vectors nearest to each query in Euclidean distance."""
    d = torch.cdist(queries.double(), pool.double())
    k = min(k, pool.shape[0])
    values, indices = d.topk(k, dim=1, largest=False)
    return values, indices


def _labelled(picture: np.ndarray, name: str, frame: tuple[int, int, int]) -> Image.Image:
    """A picture at TILE px in a coloured frame, its class name under it."""
    cell = Image.new("RGB", (TILE + 8, TILE + 24), WHITE)
    draw = ImageDraw.Draw(cell)
    draw.rectangle([0, 0, TILE + 7, TILE + 7], fill=frame)
    resample = Image.NEAREST if picture.shape[0] < TILE else Image.BILINEAR
    cell.paste(Image.fromarray(np.ascontiguousarray(picture)).resize((TILE, TILE), resample), (4, 4))
    text = name if len(name) <= 13 else name[:12] + "…"
    draw.text(((TILE + 8) / 2, TILE + 10), text, fill=BLACK, font=font(10), anchor="ma")
    return cell


def neighbors_figure(query_pictures: Sequence[np.ndarray], neighbor_pictures: Sequence[Sequence[np.ndarray]],
                     query_names: Sequence[str], neighbor_names: Sequence[Sequence[str]]) -> Image.Image:
    """One row per query: the query (blue frame), then its neighbours nearest first, each framed green when
    it is of the query's class and red when not; class names under every picture; a key on top."""
    rows = []
    for query, name, found, names in zip(query_pictures, query_names, neighbor_pictures, neighbor_names):
        cells = [_labelled(p, n, SAME if n == name else OTHER) for p, n in zip(found, names)]
        rows.append(stack([_labelled(query, name, QUERY), stack(cells, vertical=False, gap=2)], vertical=False, gap=16))
    body = stack(rows, gap=6)
    key = Image.new("RGB", (max(body.width, 560), 40), WHITE)
    draw = ImageDraw.Draw(key)
    draw.text((4, 4), "left, blue: the query (a validation image); right: the training images nearest to it in "
                      "the last hidden layer, nearest first", fill=BLACK, font=font(11))
    draw.text((4, 22), "green frame: same class as the query; red: another class", fill=BLACK, font=font(11))
    return stack([key, body], gap=4)
