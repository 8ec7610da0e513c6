"""CIFAR-10 in its standard "python version" format, read without letting the files run code.

The batches (`data_batch_1`..`data_batch_5`, `test_batch`, `batches.meta`) are Python pickles. A
pickle can name any function to call, so we unpickle with a whitelist: the only globals a CIFAR
batch needs are NumPy's array reconstruction (`ndarray`, `dtype`, `_reconstruct`) and
`_codecs.encode` (Python 3 pickles of bytes). Anything else is refused before it is imported.
The test batch becomes the prepared dataset's `val` split (the paper reports CIFAR-10 test error).
"""

from __future__ import annotations

import _codecs
import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import AlexNetError, one_line
from .archives import read_member

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
SIDE = 32

try:  # NumPy 2 moved the module; old pickles name the old one
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a CIFAR batch)") from None


def safe_unpickle(data: bytes, where: str) -> object:
    """Unpickle a CIFAR batch; any other kind of pickle is a clean error, never executed."""
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # malformed pickles raise many types; all mean "not a CIFAR batch"
        raise AlexNetError(f"{where}: not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None


def _key(d: dict, name: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


MAX_BATCH_BYTES = 64 << 20   # a CIFAR-10 batch is 31 MB; anything far larger is not one, and is not read


def parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)) from one batch file's bytes."""
    batch = safe_unpickle(data, where)
    try:
        if not isinstance(batch, dict):
            raise TypeError("not a dict")
        pixels = np.asarray(_key(batch, "data"))
        labels = np.asarray(_key(batch, "labels"))
        if labels.dtype.kind not in "iu":  # an int too large for int64 arrives as an object array
            raise ValueError(f"labels are {labels.dtype}, not whole numbers")
        labels = labels.astype(np.int64)
        if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3 * SIDE * SIDE:
            raise ValueError(f"data is {pixels.dtype} {pixels.shape}, expected uint8 (N, 3072)")
        if labels.shape != (pixels.shape[0],) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
            raise ValueError("labels do not match the images or are not 0-9")
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise AlexNetError(f"{where}: not a CIFAR-10 batch ({one_line(exc)})") from None
    images = pixels.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)  # rows are R plane, G plane, B plane
    return np.ascontiguousarray(images), labels


def parse_meta(data: bytes, where: str) -> list[str]:
    meta = safe_unpickle(data, where)
    try:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _key(meta, "label_names")]
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise AlexNetError(f"{where}: not a CIFAR-10 batches.meta ({exc})") from None
    if len(names) != 10:
        raise AlexNetError(f"{where}: expected 10 label names, found {len(names)}")
    return names


def find_cifar10(src: Path) -> Path | None:
    """The folder or archive holding CIFAR-10 batches at or directly under `src`, if any."""
    candidates = [src, src / "cifar-10-batches-py"]
    for folder in candidates:
        if folder.is_dir() and (folder / TEST_BATCH).is_file() and (folder / TRAIN_BATCHES[0]).is_file():
            return folder
    for archive in (src, src / "cifar-10-python.tar.gz"):
        if archive.is_file() and archive.name.endswith((".tar.gz", ".tgz", ".tar")):
            return archive
    return None


def load_cifar10(location: Path) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Class names and {"train": (images, labels), "val": (images, labels)} from a folder or the tar.gz."""
    def read(name: str) -> tuple[bytes, str]:
        if location.is_dir():
            path = location / name
            if not path.is_file():
                raise AlexNetError(f"{path}: missing CIFAR-10 batch")
            if path.stat().st_size > MAX_BATCH_BYTES:
                raise AlexNetError(f"{path}: {path.stat().st_size:,} bytes, not a CIFAR-10 batch (about 31 MB)")
            return path.read_bytes(), str(path)
        data = read_member(location, name, MAX_BATCH_BYTES)
        if data is None:
            raise AlexNetError(f"{location}: archive has no CIFAR-10 member {name!r}")
        return data, f"{location}:{name}"

    classes = parse_meta(*read(META))
    parts = [parse_batch(*read(name)) for name in TRAIN_BATCHES]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return classes, {"train": train, "val": parse_batch(*read(TEST_BATCH))}
