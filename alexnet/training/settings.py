"""What `alexnet train` is asked to do: every flag of the command, checked once, here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.loader import PIPELINES
from ..errors import AlexNetError, UsageError


@dataclass
class TrainSettings:
    data: Path
    out: Path
    preset: str = "paper"
    config: Path | str | None = None  # a JSON preset file (`alexnet config show`), instead of `preset`
    epochs: int | None = None        # None: the preset's
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str | None = None        # None: cuda if available, else cpu
    resume: bool = False
    workers: int | None = None       # None: a default for the device
    pipeline: str = "host"           # where crops are cut and JPEGs decoded: host, device, nvjpeg (data/loader.py)
    time_limit: float | None = None  # seconds: no epoch is started that would be predicted to end later
    precision: str | None = None     # None: the device's default (see speed.py)
    channels_last: bool | None = None
    compile: bool | None = None
    init_from: str | None = None     # a run or checkpoint whose weights start this run (fine-tuning)
    ablations: tuple[str, ...] = ()  # names from alexnet.ablations, applied to the preset
    checkpoint_every: int | None = None  # steps: also write last.pt mid-epoch (resumable to the step)
    skip_bad_batches: bool = False   # a batch with a non-finite or exploding loss is skipped, not fatal
    auto_resume: bool = False        # resume if OUT/last.pt exists, else start (for restarts under torchrun)
    tensorboard: bool = False        # also log to OUT/tensorboard (scalars, lr, conv1 kernels)
    log_steps: int | None = None     # also append the mean training loss of every N steps to OUT/steps.csv
    # Not the paper's: "linear" scales the learning rate with --batch-size against the preset's batch and
    # warms up (Goyal et al. 2017: 5 epochs, from the unscaled rate); "none" keeps the preset's rate.
    lr_scaling: str = "none"
    warmup_epochs: int | None = None  # None: 5 with linear scaling to a larger batch, else the preset's (0)
    # The paper's two columns on two devices (Section 3.2): (first column's device, second's); None: one device
    model_parallel: tuple[str, str] | None = None
    progress: bool = True
    log: Any = None                  # a callable taking one line of text; None: print

    def __post_init__(self) -> None:
        for flag, value, minimum in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                                     ("--workers", self.workers, 0), ("--checkpoint-every", self.checkpoint_every, 1),
                                     ("--log-steps", self.log_steps, 1), ("--warmup-epochs", self.warmup_epochs, 0),
                                     ("--seed", self.seed, 0)):
            if value is not None and not value >= minimum:
                raise UsageError(f"{flag} must be at least {minimum}, got {value}")
        for flag, value in (("--lr", self.lr), ("--time-limit", self.time_limit)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise UsageError(f"{flag} must be a positive number, got {value}")
        if self.pipeline not in PIPELINES:
            raise UsageError(f"--pipeline must be one of {', '.join(PIPELINES)}, got {self.pipeline!r}")
        if self.lr_scaling not in ("none", "linear"):
            raise UsageError(f"--lr-scaling must be none or linear, got {self.lr_scaling!r}")
        if self.model_parallel is not None and (len(self.model_parallel) != 2 or not all(self.model_parallel)):
            raise UsageError(f"--model-parallel takes two devices, e.g. cuda:0,cuda:1; got "
                             f"{','.join(self.model_parallel)!r}")
        if self.seed >= 2**63:
            raise UsageError(f"--seed must be below 2**63, got {self.seed}")
        data, out = Path(self.data).resolve(), Path(self.out).resolve()
        blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise AlexNetError(f"--out {self.out}: {blocking} is a file, not a folder")
        if out == data or data in out.parents:
            raise AlexNetError(f"--out {self.out}: the run folder must not be inside the dataset folder {self.data}")
