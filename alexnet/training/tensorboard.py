"""`alexnet train --tensorboard`: the epoch's scalars, the learning rate and the conv1 kernel grid.

Written under RUN/tensorboard (open with `tensorboard --logdir RUN/tensorboard`), by rank 0 only,
through `torch.utils.tensorboard` (needs the `tensorboard` package: the `[tensorboard]` extra).
metrics.csv is always written as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..drawing.kernels import kernels_figure
from ..errors import AlexNetError


class TensorBoardLog:
    def __init__(self, run: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise AlexNetError('--tensorboard needs the tensorboard package: pip install "alexnet[tensorboard]"') from None
        self.writer = SummaryWriter(str(Path(run) / "tensorboard"))

    def epoch(self, row: dict[str, Any], model: nn.Module) -> None:
        step = int(row["epoch"])
        for key in ("train_loss", "train_top1_error", "val_top1_error", "val_top5_error", "lr", "seconds",
                    "val_seconds"):
            self.writer.add_scalar(f"{'errors' if 'error' in key else 'training'}/{key}", float(row[key]), step)
        conv1 = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        columns = max(spec.groups for spec in model.cfg.convs) if hasattr(model, "cfg") else 1
        image, _ = kernels_figure(conv1.weight.detach().float().cpu().numpy(), columns)
        self.writer.add_image("conv1_kernels", torch.from_numpy(np.array(image)).permute(2, 0, 1), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
