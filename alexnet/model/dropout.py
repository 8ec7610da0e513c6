"""Dropout as the paper applies it (Section 4.2), and the inverted form most frameworks use.

The paper: while training each output is kept with probability 1 - p and passed on unchanged (zeroed
otherwise); at test time every output is multiplied by 1 - p ("multiply their outputs by 0.5").
`torch.nn.Dropout` is inverted dropout: kept outputs are scaled by 1 / (1 - p) while training and
nothing happens at test time. At test time the two compute the same function; while training they do
not: inverted dropout doubles (at p = 0.5) the inputs of the next layer, which acts like a doubled
initialisation and a quadrupled learning rate for it.
"""

from __future__ import annotations

import torch
from torch import nn



class PaperDropout(nn.Module):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return x * torch.empty_like(x).bernoulli_(1 - self.p) if self.p > 0 else x
        return x * (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, kept outputs unscaled while training, all scaled by {1 - self.p:g} at test time"


def dropout(p: float, style: str) -> nn.Module:
    return PaperDropout(p) if style == "paper" else nn.Dropout(p)
