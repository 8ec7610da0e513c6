"""`alexnet prepare`: turn an image-folder tree into a prepared dataset (see `prepared.py`).

One pass over the files: worker processes decode, rescale and crop each image and compute its RGB
moments; the main process writes the pixels into the output arrays and accumulates the mean image
and covariance (`statistics.py`), so memory stays bounded whatever the dataset's size.

Nothing half-written looks complete: arrays are written under a `.partial` name and renamed only
when their split succeeded, and `manifest.json`, which marks a dataset as ready, is written last
(to a temporary name, then renamed). Unreadable images stop the run with the list of every one.
"""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import __version__
from ..errors import AlexNetError
from ..progress import Progress
from .imagefolder import scan_split
from .images import load_prepared, read_error
from .prepared import FORMAT_NAME, FORMAT_VERSION, SPLITS, file_sha256
from .statistics import RunningStatistics, image_moments

MAX_LISTED_BAD_FILES = 20


def _work(task: tuple[int, str, int, bool]) -> tuple[int, np.ndarray | None, Any, Any, str | None]:
    """Worker: (index, path, size, want moments) -> (index, pixels, rgb sum, rgb outer, error)."""
    index, path, size, moments = task
    try:
        pixels = load_prepared(path, size)
    except Exception as exc:  # any failure to decode is reported by name, never raised here
        return index, None, None, None, read_error(path, exc)
    rgb_sum, rgb_outer = image_moments(pixels) if moments else (None, None)
    return index, pixels, rgb_sum, rgb_outer, None


def _results(tasks: list, workers: int) -> Iterator:
    if workers <= 1:
        yield from map(_work, tasks)
        return
    # fork where the platform has it (fast start); spawn elsewhere.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        yield from pool.imap_unordered(_work, tasks, chunksize=16)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _check_output(src: Path, out: Path) -> None:
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise AlexNetError(f"{out}: the output folder must not be inside the source tree {src}")
    if (out / "manifest.json").exists():
        raise AlexNetError(f"{out}: already holds a prepared dataset (manifest.json); "
                           "choose another output folder or delete it")


def prepare_dataset(src: str | Path, out: str | Path, size: int = 256, workers: int | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Prepare `src` (train/ and val/ image folders) into `out`; return the manifest."""
    src, out = Path(src), Path(out)
    if size < 1:
        raise AlexNetError(f"--size must be a positive number of pixels, got {size}")
    if not src.is_dir():
        raise AlexNetError(f"{src}: no such source folder")
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise AlexNetError(f"--workers must be 0 or more, got {workers}")
    _check_output(src, out)

    classes, train_items = scan_split(src, "train")
    _, val_items = scan_split(src, "val", classes)
    out.mkdir(parents=True, exist_ok=True)

    stats = RunningStatistics(size)
    splits: dict[str, Any] = {}
    for split, items in (("train", train_items), ("val", val_items)):
        splits[split] = _prepare_split(split, items, out, size, workers, stats if split == "train" else None,
                                       len(classes), progress)

    mean_path = out / "mean_image.npy"
    np.save(mean_path, stats.mean_image())
    statistics = stats.summary()
    statistics["mean_image"] = mean_path.name
    statistics["mean_image_sha256"] = file_sha256(mean_path)
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "size": size,
        "num_classes": len(classes),
        "classes": classes,
        "splits": splits,
        "statistics": statistics,
        "source": str(src.resolve()),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": f"alexnet {__version__}",
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _prepare_split(split: str, items: list[tuple[Path, int]], out: Path, size: int, workers: int,
                   stats: RunningStatistics | None, num_classes: int, progress: bool) -> dict[str, Any]:
    images_name, labels_name = f"{split}_images.npy", f"{split}_labels.npy"
    partial = out / (images_name + ".partial")
    images = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(items), size, size, 3))
    labels = np.array([label for _, label in items], dtype=np.int64)
    tasks = [(i, str(path), size, stats is not None) for i, (path, _) in enumerate(items)]
    bad: list[str] = []
    bar = Progress(len(items), f"prepare {split}", enabled=progress)
    try:
        for index, pixels, rgb_sum, rgb_outer, error in _results(tasks, workers):
            if error is not None:
                bad.append(error)
            else:
                images[index] = pixels
                if stats is not None:
                    stats.add(pixels, rgb_sum, rgb_outer)
            bar.update(1, postfix=f"{len(bad)} unreadable" if bad else None)
        bar.close()
        if bad:
            bad.sort()
            listed = "\n  ".join(bad[:MAX_LISTED_BAD_FILES])
            more = f"\n  ... and {len(bad) - MAX_LISTED_BAD_FILES} more" if len(bad) > MAX_LISTED_BAD_FILES else ""
            raise AlexNetError(f"{len(bad)} unreadable image(s) in {split}; nothing was written:\n  {listed}{more}")
        images.flush()
        images = None  # close the memory map before renaming
        os.replace(partial, out / images_name)
        np.save(out / labels_name, labels)
    except BaseException:
        images = None
        partial.unlink(missing_ok=True)
        raise
    return {
        "count": len(items),
        "images": images_name,
        "labels": labels_name,
        "per_class": np.bincount(labels, minlength=num_classes).tolist(),
    }
