"""`alexnet prepare`: turn a source (see `sources.py`) into a prepared dataset (see `prepared.py`).

One pass over the images: worker processes decode (at reduced JPEG scale where possible), rescale
and crop each image and compute its RGB moments; the main process writes the pixels into the output
arrays and accumulates the mean image and covariance (`statistics.py`), so memory stays bounded
whatever the dataset's size.

Interruptions: each split is written into `<split>_images.npy.partial` with a progress file beside it
(which images are done, and the statistics so far), saved every few seconds after the array is
flushed. Running the same command again continues from there. A finished split is renamed to its
final name with a `<split>.done.json` marker, and `manifest.json`, which marks the dataset as ready, is
written last; the progress files are then removed. Nothing half-written looks complete.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..version import __version__
from ..errors import AlexNetError
from ..files import FolderLock, atomic_file, atomic_path, write_json
from ..progress import Progress
from .archives import ImageRef
from .images import load_prepared, read_error, rescale_and_crop
from .manifest import MAX_SIZE
from .prepared import FORMAT_NAME, FORMAT_VERSION, file_sha256
from .sources import Source, open_source
from .statistics import RunningStatistics, image_moments
from .workers import map_in_processes, usable_cores
from .stores import JPEG_QUALITY, STORAGES, WRITERS, decode_jpeg, encode_jpeg

MAX_LISTED_BAD_FILES = 20
SAVE_PROGRESS_EVERY_S = 10.0


def _stored(pixels: np.ndarray, storage: str, moments: bool) -> tuple:
    """(pixels as stored, JPEG bytes or None, rgb sum, rgb outer): with JPEG storage the statistics are
    those of the decoded pixels, which are what training will read."""
    data = encode_jpeg(pixels) if storage == "jpeg" else None
    if data is not None:
        pixels = decode_jpeg(data)
    rgb_sum, rgb_outer = image_moments(pixels) if moments else (None, None)
    return pixels, data, rgb_sum, rgb_outer


def _work(task: tuple[int, ImageRef, int, bool, str]) -> tuple:
    """Worker: (index, image ref, size, want moments, storage) -> (index, pixels, JPEG bytes, rgb sum,
    rgb outer, error)."""
    index, ref, size, moments, storage = task
    try:
        pixels = load_prepared(ref.open(), size)
    except Exception as exc:  # any failure to decode is reported by name, never raised here
        return index, None, None, None, None, read_error(ref.name, exc)
    return (index, *_stored(pixels, storage, moments), None)


def _decoded(pixels: np.ndarray, size: int, todo: np.ndarray, moments: bool, storage: str) -> Iterator:
    """The same results as `_work` for images that are already decoded (CIFAR-10)."""
    from PIL import Image
    for index in np.flatnonzero(todo):
        image = pixels[index]
        if image.shape[:2] != (size, size):
            image = rescale_and_crop(Image.fromarray(image), size)
        yield (int(index), *_stored(image, storage, moments), None)


def _results(tasks: list, workers: int) -> Iterator:
    """`_work` over the tasks, in this process or in `workers` processes (results as they come)."""
    if workers <= 1:
        yield from map(_work, tasks)
        return
    yield from map_in_processes(_work_chunk, tasks, workers, died=(
        "a decoding worker process died (killed for lack of memory?); what was written is kept: run the same "
        "command again to continue (fewer --workers use less memory)"))


def _work_chunk(tasks: list) -> list:
    return [_work(task) for task in tasks]


def _warn_if_upscaling(source: Source, size: int, log, sample: int = 64) -> None:
    """Say so when most images are smaller than --size: they would be enlarged (more disk and compute for
    no detail). Reads the headers of up to `sample` training images."""
    from PIL import Image
    if "train" in source.pixels:
        sides = [min(source.pixels["train"][0].shape[1:3])]
    else:
        sides = []
        for ref, _ in source.images.get("train", [])[:sample]:
            try:
                with Image.open(ref.open()) as img:
                    sides.append(min(img.size))
            except Exception:  # noqa: BLE001 - unreadable files are reported by the real pass
                continue
    if sides and float(np.median(sides)) < size:
        log(f"note: most images are smaller than --size {size} (median shorter side {np.median(sides):.0f} px) "
            f"and will be enlarged; consider --size {int(np.median(sides))} (the `small` preset takes 32-64 px "
            "images; the paper's presets need 224 px crops, --size 256)")


def default_storage(size: int) -> str:
    """JPEG from 128 px up (ImageNet's 256: about a tenth of the raw bytes); raw for small images, where
    decoding would cost more than the disk it saves (CIFAR-10 at 32 px is 150 MB raw)."""
    return "jpeg" if size >= 128 else "raw"


def default_workers() -> int:
    return min(8, usable_cores())


MARKER = ".alexnet-prepare"   # in an output folder while `prepare` works there: the folder is ours


def _check_output(src: Path, out: Path) -> None:
    """Refuse an output folder that is not ours to write: inside the source, a finished dataset, a file,
    or a folder holding other files and no unfinished preparation of ours (they could be overwritten)."""
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise AlexNetError(f"{out}: the output folder must not be inside the source tree {src}")
    if (out / "manifest.json").exists():
        raise AlexNetError(f"{out}: already holds a prepared dataset (manifest.json); "
                           "choose another output folder or delete it")
    if out.exists() and not out.is_dir():
        raise AlexNetError(f"{out}: exists and is not a folder")
    if out.is_dir() and not (out / MARKER).exists() and any(p.name != ".lock" for p in out.iterdir()):
        raise AlexNetError(f"{out}: not empty, and not an unfinished `alexnet prepare` (no {MARKER} there); files "
                           "in it could be overwritten: choose a new or empty folder")


@contextlib.contextmanager
def _claim_output(src: Path, out: Path) -> Iterator[None]:
    """The output folder, ours while `prepare` runs: checked, marked, and locked against a second
    `prepare` into it (which would map the first's partial files and die of SIGBUS)."""
    _check_output(src, out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out, "this dataset folder").acquire()
    try:
        _check_output(src, out)  # again, now that no other prepare can change it
        (out / MARKER).touch()
        yield
        (out / MARKER).unlink(missing_ok=True)
    finally:
        lock.release()  # .lock stays: removing it could let two later runs lock two different files


def _split_digest(source: Source, split: str, size: int, storage: str) -> str:
    """Identifies the work of one split, so a resumed run never mixes two different sources."""
    digest = hashlib.sha256(f"{FORMAT_VERSION} {size} {source.layout} {split} {storage}\n".encode())
    if split in source.images:
        for ref, label in source.images[split]:
            # surrogateescape: file names that are not UTF-8 (possible on Linux) still have bytes
            digest.update(f"{ref.name}\t{ref.offset}\t{ref.length}\t{label}\n".encode("utf-8", "surrogateescape"))
    else:
        images, labels = source.pixels[split]
        digest.update(hashlib.sha256(images.tobytes()).digest() + labels.astype(np.int64).tobytes())
    return digest.hexdigest()


def prepare_dataset(src: str | Path, out: str | Path, size: int = 256, workers: int | None = None,
                    progress: bool = True, layout: str = "auto", val_labels: str | Path | None = None,
                    skip_bad: bool = False, log=print, storage: str | None = None,
                    val_fraction: float | None = None) -> dict[str, Any]:
    """Prepare `src` into `out` (continuing an interrupted run there); return the manifest.

    `storage`: "jpeg" or "raw" (stores.py); None chooses by the size (default_storage). `val_fraction`:
    an image folder's val split held out of its class tree (sources.open_source)."""
    src, out = Path(src), Path(out)
    if size < 1:
        raise AlexNetError(f"--size must be a positive number of pixels, got {size}")
    if size > MAX_SIZE:
        raise AlexNetError(f"--size {size}: at most {MAX_SIZE} px (the paper stores 256; {size} px would take "
                           f"{size * size * 3 / 2**30:.1f} GiB an image in memory)")
    storage = storage or default_storage(size)
    if storage not in STORAGES:
        raise AlexNetError(f"--storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise AlexNetError(f"--workers must be 0 or more, got {workers}")
    if not src.exists():
        raise AlexNetError(f"{src}: no such source folder")
    _check_output(src, out)
    source = open_source(src, layout, val_labels, val_fraction)
    for note in source.left_out.notes():
        log(f"note: {note}")
    _warn_if_upscaling(source, size, log)
    with _claim_output(src, out):
        return _prepare(source, src, out, size, workers, progress, skip_bad, log, storage, val_fraction)


def _prepare(source: Source, src: Path, out: Path, size: int, workers: int, progress: bool, skip_bad: bool, log,
             storage: str, val_fraction: float | None) -> dict[str, Any]:
    """Every split, then the mean image and the manifest (written last: it marks the dataset as ready)."""
    stats = RunningStatistics(size)
    splits: dict[str, Any] = {}
    unreadable: dict[str, list[str]] = {}
    for split in source.splits:  # every split is decoded, so one run names every unreadable file
        try:
            splits[split] = _prepare_split(source, split, out, size, workers, stats if split == "train" else None,
                                           skip_bad, progress, log, storage)
        except _Unreadable as exc:
            unreadable[split] = exc.files
    if unreadable:
        raise AlexNetError(_unreadable_message(unreadable))

    mean_path = out / "mean_image.npy"
    with atomic_file(mean_path) as f:
        np.save(f, stats.mean_image())
    statistics = stats.summary()
    statistics["mean_image"] = mean_path.name
    statistics["mean_image_sha256"] = file_sha256(mean_path)
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "size": size,
        "storage": storage,
        "num_classes": len(source.classes),
        "classes": source.classes,
        "class_names": [source.class_names.get(c, c) for c in source.classes],
        "layout": source.layout,
        "splits": splits,
        "statistics": statistics,
        "source": str(src.resolve()),
        **({"val_held_out": val_fraction} if val_fraction is not None else {}),  # val came from train
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": f"alexnet {__version__}",
    }
    write_json(out / "manifest.json", manifest)
    for split in source.splits:  # the manifest now says it all
        for name in (f"{split}.done.json", f"{split}.progress.npz", f"{split}.stats.npz"):
            (out / name).unlink(missing_ok=True)
    return manifest


class _SplitProgress:
    """The resumable state of one split: which images are written or bad, and the statistics."""

    def __init__(self, path: Path, count: int, digest: str, stats: RunningStatistics | None, writer) -> None:
        self.path, self.digest, self.stats, self.writer = path, digest, stats, writer
        self.done = np.zeros(count, bool)
        self.bad = np.zeros(count, bool)
        self.errors: dict[int, str] = {}

    def load(self) -> bool:
        """Take over a saved state of the same work; False if there is none (or it is for other work)."""
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                if str(saved["digest"]) != self.digest or saved["done"].shape != self.done.shape:
                    return False
                self.done, self.bad = saved["done"].copy(), saved["bad"].copy()
                self.errors = dict(zip(saved["error_index"].tolist(), saved["error_text"].tolist()))
                if self.stats is not None:
                    self.stats.load_state({k[6:]: saved[k] for k in saved.files if k.startswith("stats_")})
                self.writer.load_state({k[7:]: saved[k] for k in saved.files if k.startswith("writer_")})
            return True
        except (OSError, ValueError, KeyError):
            return False

    def save(self) -> None:
        arrays = {"digest": np.array(self.digest), "done": self.done, "bad": self.bad,
                  "error_index": np.array(list(self.errors), np.int64),
                  "error_text": np.array(list(self.errors.values()) or [""])[:len(self.errors)]}
        if self.stats is not None:
            arrays.update({f"stats_{k}": v for k, v in self.stats.state().items()})
        arrays.update({f"writer_{k}": v for k, v in self.writer.state().items()})
        with atomic_file(self.path) as f:
            np.savez(f, **arrays)


def _prepare_split(source: Source, split: str, out: Path, size: int, workers: int, stats: RunningStatistics | None,
                   skip_bad: bool, progress: bool, log, storage: str = "raw") -> dict[str, Any]:
    digest = _split_digest(source, split, size, storage)
    info = _finished_earlier(out, split, digest, stats)
    if info is not None:
        log(f"prepare {split}: already done by an earlier run, kept")
        return info
    count = source.count(split)
    writer = WRITERS[storage](out, split, count, size)
    state = _SplitProgress(out / f"{split}.progress.npz", count, digest, stats, writer)
    _open_writer(writer, state, stats, log, split)
    todo = ~(state.done | state.bad)
    moments = stats is not None
    if split in source.images:
        refs = source.images[split]
        results = _results([(i, refs[i][0], size, moments, storage) for i in np.flatnonzero(todo)], workers)
    else:
        results = _decoded(source.pixels[split][0], size, todo, moments, storage)
    try:
        _fill(writer, results, state, stats, Progress(count, f"prepare {split}", enabled=progress),
              int((~todo).sum()))
    finally:
        writer.close()
    return _finish_split(source, split, out, writer, state, stats, skip_bad, log)


def _finished_earlier(out: Path, split: str, digest: str, stats: RunningStatistics | None) -> dict[str, Any] | None:
    """The split's info if an earlier, interrupted run finished this same work (its statistics restored)."""
    done_marker = out / f"{split}.done.json"
    if not done_marker.is_file():
        return None
    try:
        info = json.loads(done_marker.read_text(encoding="utf-8"))
        if info.get("digest") != digest or not (out / info["split"]["images"]).is_file():
            return None
    except (ValueError, KeyError, TypeError, AttributeError):  # a marker changed since: the split is done again
        return None
    if stats is not None:
        stats.load_state(dict(np.load(out / f"{split}.stats.npz", allow_pickle=False)))
    return info["split"]


def _open_writer(writer, state: "_SplitProgress", stats: RunningStatistics | None, log, split: str) -> None:
    """Continue what an interrupted run wrote, or start the split afresh."""
    resumed = writer.exists() and state.load()
    if not resumed and stats is not None:
        stats.reset()
    try:
        writer.open(resumed)
    except ValueError as exc:
        raise AlexNetError(str(exc)) from None
    if resumed:
        log(f"prepare {split}: resuming, {int(state.done.sum())} of {len(state.done)} images already written")


def _fill(writer, results: Iterator, state: "_SplitProgress", stats: RunningStatistics | None,
          bar: Progress, already: int) -> None:
    """Write decoded images as they come, saving the progress every few seconds."""
    bar.update(already)
    last_save = time.monotonic()
    try:
        for index, pixels, data, rgb_sum, rgb_outer, error in results:
            if error is not None:
                state.bad[index], state.errors[index] = True, error
            else:
                writer.put(index, pixels, data)
                if stats is not None:
                    stats.add(pixels, rgb_sum, rgb_outer)
                state.done[index] = True
            bar.update(1, postfix=f"{int(state.bad.sum())} unreadable" if state.bad.any() else None)
            if time.monotonic() - last_save > SAVE_PROGRESS_EVERY_S:
                writer.flush()  # pixels on disk before the state that says they are
                state.save()
                last_save = time.monotonic()
    finally:
        writer.flush()
        state.save()
        bar.close()


def _finish_split(source: Source, split: str, out: Path, writer, state: "_SplitProgress",
                  stats: RunningStatistics | None, skip_bad: bool, log) -> dict[str, Any]:
    """Leave out (or refuse) unreadable images, give the files their final names, mark the split done."""
    labels_name = f"{split}_labels.npy"
    labels = (np.array([label for _, label in source.images[split]], dtype=np.int64) if split in source.images
              else source.pixels[split][1].astype(np.int64))
    skipped = [state.errors[i] for i in sorted(state.errors)]
    if skipped and not skip_bad:
        raise _Unreadable(skipped)
    if skipped:
        log(f"prepare {split}: leaving out {len(skipped)} unreadable image(s), listed in manifest.json")
        labels = labels[~state.bad]
    if len(labels) == 0:
        raise AlexNetError(f"the {split} split has no readable images")
    stored = _publish(writer, out, split, state.bad)
    with atomic_file(out / labels_name) as f:
        np.save(f, labels)
    info = {"count": int(len(labels)), **stored, "labels": labels_name,
            "per_class": np.bincount(labels, minlength=len(source.classes)).tolist(),
            "labels_sha256": file_sha256(out / labels_name), "skipped": skipped}
    if stats is not None:
        with atomic_file(out / f"{split}.stats.npz") as f:
            np.savez(f, **stats.state())
    write_json(out / f"{split}.done.json", {"digest": state.digest, "split": info})
    (out / f"{split}.progress.npz").unlink(missing_ok=True)
    return info


class _Unreadable(Exception):
    """A split with unreadable files (without --skip-bad): collected so that all splits are named at once."""

    def __init__(self, files: list[str]) -> None:
        super().__init__(f"{len(files)} unreadable")
        self.files = files


def _unreadable_message(unreadable: dict[str, list[str]]) -> str:
    total = sum(len(files) for files in unreadable.values())
    lines = [f"{total} unreadable image(s) in {', '.join(f'{s} ({len(f)})' for s, f in unreadable.items())}; "
             "the dataset was not finished (rerun with --skip-bad to leave them out; decoded images are kept "
             "for that):"]
    listed = [name for files in unreadable.values() for name in sorted(files)]
    lines += [f"  {name}" for name in listed[:MAX_LISTED_BAD_FILES]]
    if len(listed) > MAX_LISTED_BAD_FILES:
        lines.append(f"  ... and {len(listed) - MAX_LISTED_BAD_FILES} more")
    return "\n".join(lines)


def _publish(writer, out: Path, split: str, bad: np.ndarray) -> dict[str, Any]:
    """The split's image files under their final names, without the unreadable images; their manifest entries."""
    if writer.storage == "raw":
        if bad.any():
            _drop_bad(writer.partial, bad)
        os.replace(writer.partial, writer.final)  # filled in place and flushed: complete, now under its final name
        return {"storage": "raw", "images": writer.final.name, "images_sha256": file_sha256(writer.final)}
    index_path = out / f"{split}_index.npy"
    with atomic_file(index_path) as f:
        np.save(f, writer.index[~bad])
    shards = [writer.shard_path(k) for k in range(writer.shard + 1)]
    return {"storage": "jpeg", "images": index_path.name, "images_sha256": file_sha256(index_path),
            "quality": JPEG_QUALITY, "shards": [p.name for p in shards],
            "shards_sha256": [file_sha256(p) for p in shards]}


def _drop_bad(partial: Path, bad: np.ndarray, chunk: int = 1024) -> None:
    """Rewrite the array without the rows of unreadable images (in chunks: bounded memory)."""
    old = np.load(partial, mmap_mode="r")
    keep = np.flatnonzero(~bad)
    with atomic_path(partial) as tmp:
        new = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(keep),) + old.shape[1:])
        for start in range(0, len(keep), chunk):
            new[start:start + chunk] = old[keep[start:start + chunk]]
        new.flush()
        del new, old
