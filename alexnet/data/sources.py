"""What `alexnet prepare` can read, recognised from the source folder (or named with --layout).

- `imagefolder`: SRC/train/<class>/* and SRC/val/<class>/* (the kinds in IMAGE_EXTENSIONS), classes
  sorted; or one class tree (SRC/<class>/*, or SRC/train/<class>/* alone) whose val split `val_fraction`
  holds out.
- `ilsvrc2012`, `ilsvrc2010`: the ImageNet challenge files as distributed (see `ilsvrc.py`).
- `cifar10`: CIFAR-10's python batches, a folder or `cifar-10-python.tar.gz` (see `cifar.py`).

Every source yields the same thing: the classes, optional human-readable class names, and per split
either labelled image references (decoded by `prepare`'s workers) or already-decoded pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AlexNetError
from .archives import ImageRef
from .cifar import find_cifar10, load_cifar10
from .ilsvrc import detect_year, ilsvrc_splits
from .imagefolder import MAX_VAL_FRACTION, LeftOut, hold_out, scan_classes, scan_split

LAYOUTS = ("auto", "imagefolder", "ilsvrc2012", "ilsvrc2010", "cifar10")


@dataclass
class Source:
    layout: str
    classes: list[str]
    class_names: dict[str, str] = field(default_factory=dict)
    images: dict[str, list[tuple[ImageRef, int]]] = field(default_factory=dict)       # split -> files
    pixels: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)    # split -> arrays
    left_out: LeftOut = field(default_factory=LeftOut)   # what class folders hold that is not read: prepare says

    @property
    def splits(self) -> list[str]:
        return [s for s in ("train", "val", "test") if s in self.images or s in self.pixels]

    def count(self, split: str) -> int:
        return len(self.images[split]) if split in self.images else len(self.pixels[split][1])


def detect_layout(src: Path) -> str:
    if find_cifar10(src) is not None and not (src / "train").is_dir():
        return "cifar10"
    year = detect_year(src)
    if year is not None:
        return f"ilsvrc{year}"
    return "imagefolder"


def open_source(src: str | Path, layout: str = "auto", val_labels: str | Path | None = None,
                val_fraction: float | None = None) -> Source:
    """The labelled images of `src`, read as `layout` (recognised when 'auto'); `val_fraction`: an image
    folder without a val split gets one, that fraction of each class held out of its training images."""
    src = Path(src)
    if not src.exists():
        raise AlexNetError(f"{src}: no such source folder")
    if layout not in LAYOUTS:
        raise AlexNetError(f"--layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(src)
    if val_labels is not None and not Path(val_labels).is_file():
        raise AlexNetError(f"--val-labels {val_labels}: no such file")
    if val_fraction is not None and layout != "imagefolder":
        raise AlexNetError(f"--val-fraction: only for image folders, and {src} is read as {layout} (which has "
                           "its own validation split)")

    if layout == "cifar10":
        location = find_cifar10(src)
        if location is None:
            raise AlexNetError(f"{src}: no CIFAR-10 batches (data_batch_1..5, test_batch, batches.meta) "
                               "or cifar-10-python.tar.gz found")
        classes, pixels = load_cifar10(location)
        return Source(layout, classes, pixels=pixels)
    if not src.is_dir():
        raise AlexNetError(f"{src}: not a folder")
    if layout.startswith("ilsvrc"):
        classes, names, images = ilsvrc_splits(src, layout[-4:], Path(val_labels) if val_labels else None)
        return Source(layout, classes, names, images=images)

    left_out = LeftOut()
    if val_fraction is None:
        classes, train = scan_split(src, "train", left_out=left_out)
        _, val = scan_split(src, "val", classes, left_out=left_out)
    else:
        classes, train, val = _held_out_split(src, val_fraction, left_out)
    return Source(layout, classes, images={"train": _file_refs(train), "val": _file_refs(val)}, left_out=left_out)


def _held_out_split(src: Path, fraction: float, left_out: LeftOut) -> tuple[list[str], list, list]:
    """One class tree (SRC/train/<class>/* with no val/, or SRC/<class>/*) split into train and val."""
    if not 0 < fraction <= MAX_VAL_FRACTION:
        raise AlexNetError(f"--val-fraction must be above 0 and at most {MAX_VAL_FRACTION}, got {fraction}")
    if (src / "val").exists():
        raise AlexNetError(f"--val-fraction: {src / 'val'} exists, and it is the validation split; leave out "
                           "--val-fraction to use it (or move it away to hold out part of train instead)")
    root = src / "train" if (src / "train").is_dir() else src
    classes, items = scan_classes(root, left_out=left_out)
    train, val = hold_out(items, fraction, root)
    if not val:
        raise AlexNetError(f"--val-fraction: {root} has no class with two or more images to hold one out of")
    return classes, train, val


def _file_refs(items: list[tuple[Path, int]]) -> list[tuple[ImageRef, int]]:
    return [(ImageRef(str(path), str(path)), label) for path, label in items]
