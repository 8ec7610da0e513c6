"""Where a prepared split's pixels live: raw uint8 arrays, or JPEGs packed into a few large files.

- "raw": one NumPy array (N, S, S, 3) read through a memory map. No decoding, S*S*3 bytes an image
  (196,608 at 256: about 252 GB for ILSVRC-2012's training set).
- "jpeg": each image as a JPEG (quality JPEG_QUALITY) appended to shard files of up to SHARD_BYTES,
  with an index (N, 3) int64 of (shard, offset, length). About 20-30 KB an image at 256 px on
  photographs: ImageNet in a few tens of GB, not a million small files.

Both are read the same way: `store.read(indices)` -> uint8 (n, S, S, 3), `store.crops(indices, corners,
c)` -> uint8 (n, c, c, 3), and a store also behaves as a read-only array (`len`, `shape`, `store[i]`,
`store[a:b]`, `np.asarray(store)`). Files are opened lazily in the process that reads, so a store can
be sent to loader workers.
"""

from __future__ import annotations

import errno
import io
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import AlexNetError

STORAGES = ("raw", "jpeg")
JPEG_QUALITY = 90
SHARD_BYTES = 1 << 30


def decode_jpeg_pillow(data: bytes | memoryview, into: np.ndarray | None = None) -> np.ndarray:
    """JPEG bytes -> uint8 (H, W, 3) RGB, with libjpeg through Pillow (`into` is a hint Pillow cannot use)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


try:  # libjpeg-turbo without Pillow's overhead: 1.8x Pillow's rate here, the same pixels (the [jpeg] extra)
    import simplejpeg

    def decode_jpeg(data: bytes | memoryview, into: np.ndarray | None = None) -> np.ndarray:
        """JPEG bytes -> uint8 (H, W, 3) RGB, with simplejpeg (libjpeg-turbo); into `into` (a reusable
        buffer of at least the image's size) when given: no allocation per image, about 5% of a decode."""
        return simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=into)

    DECODER = f"simplejpeg {simplejpeg.__version__}"
except ImportError:
    decode_jpeg = decode_jpeg_pillow
    DECODER = "Pillow (pip install simplejpeg, or the [jpeg] extra, decodes about 1.8x faster)"


def encode_jpeg(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class _Store:
    """The array-like face shared by both stores; subclasses provide `read` and `crops`."""
    count: int
    size: int
    dtype = np.dtype(np.uint8)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.count, self.size, self.size, 3)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.read(np.array([key + self.count if key < 0 else key]))[0]
        return self.read(np.arange(self.count)[key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read(np.arange(self.count))
        return out if dtype is None else out.astype(dtype)

    def __getstate__(self) -> dict:  # open files stay behind: the receiving process opens its own
        return {k: (None if k.startswith("_open") else v) for k, v in self.__dict__.items()}


class RawStore(_Store):
    def __init__(self, path: str | Path, count: int, size: int) -> None:
        self.path, self.count, self.size = str(path), count, size
        self._open_array = None

    @property
    def array(self) -> np.ndarray:
        if getattr(self, "_open_array", None) is None:
            self._open_array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return self._open_array

    def read(self, indices: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        indices = np.asarray(indices, np.int64)
        if len(indices) and not 0 <= indices.min() <= indices.max() < self.count:
            raise IndexError(f"image indices {indices.min()}..{indices.max()} outside 0..{self.count - 1}")
        out = np.empty((len(indices),) + self.shape[1:], np.uint8) if out is None else out
        if len(indices) and (np.diff(indices) == 1).all():  # one contiguous slice: a single copy
            out[:] = self.array[indices[0]:indices[-1] + 1]
            return out
        for i, index in enumerate(indices):
            out[i] = self.array[index]
        return out

    def crops(self, indices: np.ndarray, corners: np.ndarray, c: int, out: np.ndarray | None = None) -> np.ndarray:
        """Only the crops' rows are read from the memory map (into `out` when given)."""
        out = np.empty((len(indices), c, c, 3), np.uint8) if out is None else out
        for i, (index, (y, x)) in enumerate(zip(indices, corners)):
            out[i] = self.array[index, y:y + c, x:x + c]
        return out


class JpegStore(_Store):
    """JPEGs in shards. An index of four columns also holds each image's CRC-32, checked at every read
    (about 2% of a decode): changed bytes are named, never decoded into other pixels."""

    def __init__(self, shards: list[str | Path], index: np.ndarray, size: int, where: str = "image") -> None:
        self.shards, self.index, self.size, self.count = [str(s) for s in shards], index, size, len(index)
        self.where = where  # how an image is named in an error, e.g. "train image"
        self._open_files: list | None = None

    def encoded(self, i: int) -> memoryview:
        """Image i's JPEG bytes, as stored (checked against its CRC-32 where the index has one)."""
        if getattr(self, "_open_files", None) is None:
            self._open_files = [np.memmap(path, dtype=np.uint8, mode="r") for path in self.shards]
        row = self.index[i]
        shard, offset, length = int(row[0]), int(row[1]), int(row[2])
        data = memoryview(self._open_files[shard][offset:offset + length])
        if len(row) > 3 and zlib.crc32(data) != int(row[3]):
            raise self._corrupt(i, "its bytes do not match their checksum")
        return data

    def decoded(self, i: int, into: np.ndarray | None = None) -> np.ndarray:
        """Image i's pixels, the store's size (a view of `into` when given and the decoder can use it)."""
        try:
            pixels = decode_jpeg(self.encoded(i), into)
        except AlexNetError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure names the image
            raise self._corrupt(i, f"it does not decode ({' '.join(str(exc).split())[:120]})") from None
        if pixels.shape != (self.size, self.size, 3):  # a file changed with its checksum
            raise self._corrupt(i, f"it decodes to {'x'.join(map(str, pixels.shape))} pixels, not "
                                   f"{self.size}x{self.size}x3")
        return pixels

    def _corrupt(self, i: int, why: str) -> AlexNetError:
        shard = self.shards[int(self.index[i][0])]
        dataset = Path(shard).parent
        return AlexNetError(f"{shard}: {self.where} {i} is corrupt ({why}); `alexnet prepare --verify {dataset}` "
                            "checks every image")

    def read(self, indices: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((len(indices), self.size, self.size, 3), np.uint8) if out is None else out
        for i, index in enumerate(np.asarray(indices, np.int64)):
            pixels = self.decoded(int(index), out[i])  # decoded in place where the decoder can
            if not np.shares_memory(pixels, out[i]):
                out[i] = pixels
        return out

    def crops(self, indices: np.ndarray, corners: np.ndarray, c: int, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((len(indices), c, c, 3), np.uint8) if out is None else out
        scratch = np.empty((self.size, self.size, 3), np.uint8)  # each image decoded here, then its crop copied
        for i, (index, (y, x)) in enumerate(zip(indices, corners)):
            out[i] = self.decoded(int(index), scratch)[y:y + c, x:x + c]
        return out


# --- writing (alexnet prepare) ------------------------------------------------------------------------
class RawWriter:
    """Fills `<split>_images.npy.partial` in place; renamed to its final name when the split is done."""
    storage = "raw"

    def __init__(self, out: Path, split: str, count: int, size: int) -> None:
        self.partial, self.final = out / f"{split}_images.npy.partial", out / f"{split}_images.npy"
        self.shape = (count, size, size, 3)
        self.array: np.ndarray | None = None

    def exists(self) -> bool:
        return self.partial.is_file()

    def open(self, resumed: bool) -> None:
        if resumed:
            self.array = np.lib.format.open_memmap(self.partial, mode="r+")
            if self.array.shape != self.shape:
                raise ValueError(f"{self.partial}: has shape {self.array.shape}, expected {self.shape}; delete it")
        else:
            self.array = np.lib.format.open_memmap(self.partial, mode="w+", dtype=np.uint8, shape=self.shape)
            _reserve(self.partial)

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    def put(self, index: int, pixels: np.ndarray, data: bytes | None) -> None:
        self.array[index] = pixels

    def flush(self) -> None:
        self.array.flush()

    def close(self) -> None:
        self.array = None  # closes the memory map


class JpegWriter:
    """Appends JPEG bytes to `<split>_images.NNN.jpgs` shards and records (shard, offset, length) per
    image; the index is saved with the progress state and, at the end, as `<split>_index.npy`."""
    storage = "jpeg"

    def __init__(self, out: Path, split: str, count: int, size: int) -> None:
        self.out, self.split = out, split
        self.index = np.full((count, 4), -1, np.int64)   # shard, offset, length, CRC-32
        self.file = None
        self.shard = 0

    def shard_path(self, k: int) -> Path:
        return self.out / f"{self.split}_images.{k:03d}.jpgs"

    def exists(self) -> bool:
        return self.shard_path(0).is_file()

    def open(self, resumed: bool) -> None:
        written = self.index[:, 0] >= 0
        self.shard = int(self.index[written, 0].max()) if resumed and written.any() else 0
        for stale in self.out.glob(f"{self.split}_images.*.jpgs"):  # shards past the saved state
            if not resumed or int(stale.suffixes[-2][1:]) > self.shard:
                stale.unlink()
        in_shard = written & (self.index[:, 0] == self.shard)
        end = int((self.index[in_shard, 1] + self.index[in_shard, 2]).max()) if resumed and in_shard.any() else 0
        self.file = open(self.shard_path(self.shard), "r+b" if resumed and end else "wb")
        self.file.truncate(end)  # bytes after the last saved image are dropped (written after the last save)
        self.file.seek(end)

    def state(self) -> dict[str, np.ndarray]:
        return {"index": self.index}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays["index"].shape == self.index.shape:
            self.index = arrays["index"].copy()

    def put(self, index: int, pixels: np.ndarray, data: bytes | None) -> None:
        offset = self.file.tell()
        if offset and offset + len(data) > SHARD_BYTES:
            self.file.close()
            self.shard += 1
            self.file, offset = open(self.shard_path(self.shard), "wb"), 0
        self.file.write(data)
        self.index[index] = (self.shard, offset, len(data), zlib.crc32(data))

    def flush(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _reserve(path: Path) -> None:
    """Allocate a memory-mapped file's blocks now: a sparse map on a disk that fills up later kills the
    process with SIGBUS and no message; here a full disk is an error at the start, naming the file."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise OSError(exc.errno, f"not enough free disk for {os.fstat(f.fileno()).st_size / 2**30:.1f} GiB "
                                         "of images", str(path)) from None
            # other errors (a file system without fallocate): go on with the sparse file


WRITERS = {"raw": RawWriter, "jpeg": JpegWriter}
