"""What a training run leaves in its folder, written by one object (rank 0 alone writes), which holds the
folder's lock while the run lasts: a second `train` on the same --out is refused, never interleaved.

- config.json: the run's resolved configuration, written when it starts (`train --config` reads it back);
- last.pt: the checkpoint, at each epoch's end and mid-epoch when asked (see checkpoint.py);
- metrics.csv: one row per finished epoch, rewritten whole each time (METRICS_COLUMNS);
- steps.csv (with `--log-steps N`): a row per N steps, appended (STEP_COLUMNS). A log, not state: a
  resumed run appends again from its checkpoint, so rows after the last checkpoint may repeat.
Every other file goes through `files.atomic_*`: a crash leaves the previous version, never half of one.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..errors import AlexNetError
from ..files import FolderLock, refuse_to_replace_foreign_outputs, remove_stale_temporaries, write_json, write_text
from .checkpoint import LAST, save_checkpoint

CONFIG = "config.json"
METRICS = "metrics.csv"
# at_chance: 1 when the epoch's mean training loss was within 5% of ln(classes) either way (training/chance.py)
METRICS_COLUMNS = ("epoch", "lr", "train_loss", "train_top1_error", "val_top1_error", "val_top5_error", "seconds",
                   "images_per_second", "at_chance", "val_seconds")
STEPS = "steps.csv"
STEP_COLUMNS = ("epoch", "step", "global_step", "lr", "train_loss")
# A file of these names that a run did not write (a user's, in the folder given as --out) is refused before
# a new run trains, never replaced or appended to; ours are told by how they start (run_config's first keys).
RUN_FILES = {CONFIG: ('"data_fingerprint"', "a run configuration"),
             METRICS: (",".join(METRICS_COLUMNS[:3]), "a metrics table"),
             STEPS: (",".join(STEP_COLUMNS[:3]), "a step log")}


def refuse_to_overwrite(last: Path) -> None:
    if last.exists():
        raise AlexNetError(f"{last} exists: pass --resume to continue that run, or choose a new --out")


class RunWriter:
    """`with RunWriter(folder, enabled, resuming) as writer:` the run folder, locked, for one run's files."""

    def __init__(self, folder: str | Path, enabled: bool = True, resuming: bool = False) -> None:
        self.folder, self.enabled, self.resuming = Path(folder), enabled, resuming
        self.lock: FolderLock | None = None

    def __enter__(self) -> "RunWriter":
        if self.enabled:
            self.lock = FolderLock(self.folder, "this run folder").acquire()
            remove_stale_temporaries(self.folder)  # temporaries of writers killed before they could clean up
            if not self.resuming:  # a run that ended while this one started may have written it since the plan
                try:
                    refuse_to_overwrite(self.last)
                    refuse_to_replace_foreign_outputs(self.folder, RUN_FILES, "choose another --out")
                except AlexNetError:
                    self.close()
                    raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @property
    def last(self) -> Path:
        return self.folder / LAST

    def start(self, config: dict[str, Any]) -> None:
        if self.enabled:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json(self.folder / CONFIG, config)

    def checkpoint(self, payload: dict[str, Any]) -> None:
        if self.enabled:
            save_checkpoint(self.last, payload)

    def log_step(self, row: dict[str, Any]) -> None:
        """Append one row to steps.csv (with its header when the file is new)."""
        if self.enabled:
            path = self.folder / STEPS
            new = not path.exists()
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=STEP_COLUMNS, lineterminator="\n")
                if new:
                    writer.writeheader()
                writer.writerow({k: row[k] for k in STEP_COLUMNS})

    def end_epoch(self, payload: dict[str, Any], history: list[dict[str, Any]]) -> None:
        if self.enabled:
            self.checkpoint(payload)
            write_text(self.folder / METRICS, metrics_csv(history))


def metrics_csv(history: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in METRICS_COLUMNS})  # runs from before a column: empty
    return buf.getvalue()


def read_metrics(run: str | Path) -> list[dict[str, float]]:
    """metrics.csv of a run folder as rows of floats."""
    path = Path(run) / METRICS
    if not path.is_file():
        raise AlexNetError(f"{path}: no metrics.csv in this run folder")
    try:
        with open(path, newline="") as f:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    except (ValueError, TypeError) as exc:
        raise AlexNetError(f"{path}: not a metrics file written by alexnet train ({exc})") from None
