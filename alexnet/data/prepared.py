"""The prepared-dataset format and its reader.

A prepared dataset is a folder:

    manifest.json        classes, counts, size, training-set statistics; written last, so a folder
                         without it is not (yet) a dataset
    train_images.npy     uint8 (N, S, S, 3): each image's central S x S patch after rescaling
    train_labels.npy     int64 (N,)
    val_images.npy       uint8 (M, S, S, 3)
    val_labels.npy       int64 (M,)
    mean_image.npy       float32 (S, S, 3): the per-pixel training mean, 0-255 scale

Raw uint8 arrays in NumPy's .npy format: read with a memory map, so a batch costs only a copy (no
decoding), any process can open them, and memory use does not grow with the dataset's size. The
price is disk space: S*S*3 bytes an image (196,608 at 256, about 252 GB for ImageNet's train split).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AlexNetError
from .manifest import manifest_problem
from .stores import JpegStore, RawStore

FORMAT_NAME = "alexnet-prepared"
FORMAT_VERSION = 1
SPLITS = ("train", "val")          # always present
OPTIONAL_SPLITS = ("test",)        # ILSVRC-2010's labelled test set


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def index_problem(index: np.ndarray, shard_sizes: list[int]) -> str | None:
    """What is wrong with a JPEG index's rows (shard, offset, length[, CRC-32]), or None: every image a
    non-empty run of bytes inside its shard, no two sharing a byte. One sort, no file read."""
    if not len(index):
        return None
    shard, offset, length = index[:, 0], index[:, 1], index[:, 2]
    if shard.min() < 0 or shard.max() >= len(shard_sizes) or offset.min() < 0:
        return "index points outside its shards"
    if length.min() <= 0:
        return f"image {int(np.argmin(length))} has no bytes in the index"
    ends = offset + length
    if (ends > np.asarray(shard_sizes, np.int64)[shard]).any():
        return "a shard is shorter than its index says (truncated or replaced)"
    order = np.lexsort((offset, shard))
    same_shard = shard[order][1:] == shard[order][:-1]
    overlap = same_shard & (offset[order][1:] < ends[order][:-1])
    if overlap.any():
        first = int(np.flatnonzero(overlap)[0])
        return f"images {int(order[first])} and {int(order[first + 1])} share bytes in their shard"
    return None


def _not_prepared(root: Path) -> str:
    """What a folder without manifest.json is, and what to run instead."""
    if (root / "train").is_dir() and (root / "val").is_dir():
        return (f"{root}: an image folder (train/ and val/), not a prepared dataset; prepare it first: "
                f"`alexnet prepare {root} DATA`, then give --data DATA")
    if (root / "last.pt").is_file():
        return f"{root}: a run folder, not a prepared dataset; its dataset is the one it was trained on (--data)"
    if any(root.glob("*.progress.npz")) or (root / ".alexnet-prepare").exists():
        return (f"{root}: an unfinished preparation (no manifest.json yet); run the same `alexnet prepare SRC {root}` "
                "again to finish it")
    return f"{root}: not a prepared dataset (no manifest.json); make one with `alexnet prepare SRC {root}`"


class PreparedDataset:
    """A prepared dataset opened for reading; image arrays are memory-mapped, read-only."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not self.root.is_dir():
            raise AlexNetError(f"{self.root}: no such dataset folder")
        if not manifest_path.is_file():
            raise AlexNetError(_not_prepared(self.root))
        raw = manifest_path.read_bytes()
        try:
            manifest = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AlexNetError(f"{manifest_path}: not valid JSON ({exc})") from None
        except RecursionError:
            raise AlexNetError(f"{manifest_path}: not a manifest (JSON nested too deeply to read)") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise AlexNetError(f"{manifest_path}: not an alexnet prepared-dataset manifest")
        if manifest.get("version") != FORMAT_VERSION:
            raise AlexNetError(f"{manifest_path}: format version {manifest.get('version')!r}, "
                               f"this alexnet reads version {FORMAT_VERSION}")
        problem = manifest_problem(manifest)
        if problem:
            raise AlexNetError(f"{manifest_path}: {problem}; refused (run `alexnet prepare` again to rewrite it)")
        self.manifest: dict[str, Any] = manifest
        self.fingerprint = hashlib.sha256(raw).hexdigest()[:16]
        try:
            self.size = int(manifest["size"])
            self.classes: list[str] = list(manifest["classes"])
            stats = manifest["statistics"]
            self.eigenvalues = np.asarray(stats["rgb_eigenvalues"], np.float32).reshape(3)
            self.eigenvectors = np.asarray(stats["rgb_eigenvectors"], np.float32).reshape(3, 3)
            splits = manifest["splits"]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise AlexNetError(f"{manifest_path}: malformed manifest ({type(exc).__name__}: {exc})") from None

        try:
            self.images: dict[str, RawStore | JpegStore] = {}  # array-like; see stores.py
            self.labels: dict[str, np.ndarray] = {}
            self.class_names: list[str] = list(manifest.get("class_names") or self.classes)
            for split in SPLITS + OPTIONAL_SPLITS:
                info = splits.get(split)
                if not info and split in OPTIONAL_SPLITS:
                    continue
                if not info:
                    raise AlexNetError(f"{manifest_path}: no {split!r} split")
                count = int(info["count"])
                images = self._store(info, count, split)
                labels = self._load(info["labels"], mmap=False)
                if labels.dtype.kind not in "iu":  # bool or float labels: not written by prepare
                    raise AlexNetError(f"{self.root / info['labels']}: labels are {labels.dtype}, not whole numbers")
                if labels.shape != (count,) or (count and (labels.min() < 0 or labels.max() >= len(self.classes))):
                    raise AlexNetError(f"{self.root / info['labels']}: labels do not match the manifest")
                # Labels zeroed or shuffled keep their type and range: their digest, on every open (10 MB for
                # ILSVRC-2012), not only with --verify.
                self._check_digest(info["labels"], info.get("labels_sha256"))
                if count == 0:
                    raise AlexNetError(f"{self.root}: the {split} split is empty")
                self.images[split], self.labels[split] = images, labels.astype(np.int64)

            mean_path = self._path(stats.get("mean_image", "mean_image.npy"))
            self._check_digest(mean_path.name, stats.get("mean_image_sha256"))
            self.mean_image = self._load(mean_path.name, mmap=False).astype(np.float32)
            if self.mean_image.shape != (self.size, self.size, 3):
                raise AlexNetError(f"{mean_path}: expected shape {(self.size, self.size, 3)}, found {self.mean_image.shape}")
            self._check_statistics(mean_path)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            # a manifest edited by hand or damaged: wrong types where the format has numbers, lists, dicts
            raise AlexNetError(f"{manifest_path}: malformed manifest ({type(exc).__name__}: {exc})") from None

    def _check_statistics(self, mean_path: Path) -> None:
        """The statistics training uses, in their possible ranges: a mean of 0-255 pixels, the colour
        covariance's eigenvalues (0-1 pixel scale: at most 0.75 each) and orthonormal eigenvectors."""
        where = self.root / "manifest.json"
        if not np.isfinite(self.mean_image).all() or self.mean_image.min() < 0 or self.mean_image.max() > 255:
            raise AlexNetError(f"{mean_path}: the mean image is not made of pixel values 0-255 (NaN, infinite or "
                               "out of range)")
        vals, vecs = self.eigenvalues, self.eigenvectors
        if not (np.isfinite(vals).all() and vals.min() > -1e-6 and vals.max() <= 1.0):
            raise AlexNetError(f"{where}: rgb_eigenvalues {vals.tolist()} are not a colour covariance's "
                               "(finite, 0 to 1 on the 0-1 pixel scale)")
        if not (np.isfinite(vecs).all() and np.abs(vecs.T @ vecs - np.eye(3)).max() < 1e-3):
            raise AlexNetError(f"{where}: rgb_eigenvectors are not orthonormal columns")

    def _check_digest(self, name: str, expected: str | None) -> None:
        path = self._path(name)
        if expected and path.is_file() and file_sha256(path) != expected:
            raise AlexNetError(f"{path}: checksum does not match the manifest (file changed or corrupt); "
                               f"`alexnet prepare --verify {self.root}` checks every file")

    def read(self, split: str, indices) -> np.ndarray:
        """Stored images of a split as uint8 (n, S, S, 3), whatever the storage."""
        return self.images[split].read(np.asarray(indices, np.int64))

    def _store(self, info: dict[str, Any], count: int, split: str) -> RawStore | JpegStore:
        """A split's images, checked against the manifest without reading them."""
        shape = (count, self.size, self.size, 3)
        if info.get("storage", "raw") == "raw":
            images = self._load(info["images"], mmap=True)
            if images.dtype != np.uint8 or images.shape != shape:
                raise AlexNetError(f"{self.root / info['images']}: expected uint8 array of shape {shape}, "
                                   f"found {images.dtype} {images.shape}")
            return RawStore(self._path(info["images"]), count, self.size)
        if info["storage"] != "jpeg":
            raise AlexNetError(f"{self.root / 'manifest.json'}: unknown storage {info['storage']!r}")
        index = self._load(info["images"], mmap=False)
        shards = [self._path(name) for name in info["shards"]]
        if index.dtype != np.int64 or index.shape not in ((count, 3), (count, 4)):
            raise AlexNetError(f"{self.root / info['images']}: expected an int64 index of shape {(count, 4)}, "
                               f"found {index.dtype} {index.shape}")
        for shard in shards:
            if not shard.is_file():
                raise AlexNetError(f"{shard}: missing (the prepared dataset is incomplete)")
        problem = index_problem(index, [shard.stat().st_size for shard in shards])
        if problem:
            raise AlexNetError(f"{self.root / info['images']}: {problem}; `alexnet prepare --verify {self.root}` "
                               "checks every file")
        return JpegStore(shards, index, self.size, where=f"{split} image")

    def _path(self, name: Any) -> Path:
        """The dataset file a manifest names: a plain file name inside the folder, nothing else."""
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise AlexNetError(f"{self.root / 'manifest.json'}: array name {name!r} is not a file name inside "
                               "the dataset folder")
        return self.root / name

    def _load(self, name: str, mmap: bool) -> np.ndarray:
        path = self._path(name)
        if not path.is_file():
            raise AlexNetError(f"{path}: missing (the prepared dataset is incomplete)")
        try:
            # allow_pickle=False: a .npy file can never run code when loaded.
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # EOFError: an empty or cut-off file
            raise AlexNetError(f"{path}: unreadable array ({exc})") from None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> str:
        held = self.manifest.get("val_held_out")
        return (f"{self.root}: {len(self.labels['train'])} train / {len(self.labels['val'])} val images"
                f"{f' (val held out of one class tree: {held:g} of each class)' if held else ''}, "
                f"{self.num_classes} classes, {self.size}x{self.size}")


def verify_dataset(root: str | Path, progress: bool = False) -> str:
    """Check a prepared dataset end to end; a one-paragraph report, or an AlexNetError naming the problem.

    Opening it checks the manifest, the array shapes and dtypes (the JPEG index against its shards), the
    label range and the mean image's checksum; here we also recount the labels per class, recompute
    every file's SHA-256 and, for JPEG storage, decode every image.
    """
    dataset = PreparedDataset(root)
    lines = [f"{dataset.root}: format {FORMAT_NAME} v{FORMAT_VERSION}, {dataset.num_classes} classes, "
             f"{dataset.size}x{dataset.size}"]
    splits = dataset.manifest["splits"]
    for split in dataset.labels:
        info = splits[split]
        counts = np.bincount(dataset.labels[split], minlength=dataset.num_classes).tolist()
        if "per_class" in info and (not isinstance(info["per_class"], list) or counts != info["per_class"]):
            raise AlexNetError(f"{dataset.root / info['labels']}: per-class counts differ from the manifest")
        checked = _check_checksums(dataset, info, progress)
        note = f"checksums of {' and '.join(checked)} match" if checked else "no checksums recorded"
        if info.get("storage") == "jpeg":
            _check_decodes(dataset, split, progress)
            note += f", all {info['count']} JPEGs decode to {dataset.size}x{dataset.size}"
        skipped = info.get("skipped", [])
        skipped = len(skipped) if isinstance(skipped, list) else 0
        lines.append(f"  {split}: {info['count']} images ({info.get('storage', 'raw')}), counts per class match, "
                     f"{note}" + (f", {skipped} unreadable left out" if skipped else ""))
    lines.append("ok")
    return "\n".join(lines)


def _check_checksums(dataset: PreparedDataset, info: dict[str, Any], progress: bool) -> list[str]:
    """Recompute the SHA-256 of each of a split's files the manifest has one for; the kinds checked."""
    from ..progress import Progress

    files = [(key, info[key], info.get(f"{key}_sha256")) for key in ("images", "labels")]
    files += [("shards", name, sha) for name, sha in zip(info.get("shards", []), info.get("shards_sha256", []))]
    checked = []
    for what, name, expected in files:
        if not expected:
            continue
        bar = Progress(1, f"checksum {name}", enabled=progress)
        actual = file_sha256(dataset._path(name))
        bar.update(1)
        bar.close()
        if actual != expected:
            raise AlexNetError(f"{dataset.root / name}: SHA-256 differs from the manifest (changed or corrupt)")
        if what not in checked:
            checked.append(what)
    return checked


def _check_decodes(dataset: PreparedDataset, split: str, progress: bool, chunk: int = 256) -> None:
    from ..progress import Progress

    store = dataset.images[split]
    bar = Progress(len(store), f"decode {split}", enabled=progress)
    for start in range(0, len(store), chunk):
        for i in range(start, min(start + chunk, len(store))):
            store.decoded(i)  # a changed checksum, a failed decode or another size: one line naming the image
        bar.update(min(chunk, len(store) - start))
    bar.close()
