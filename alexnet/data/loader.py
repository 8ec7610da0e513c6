"""Batches from a prepared dataset, built in DataLoader worker processes, and the loader that runs them.

Each item of these datasets is a whole batch (the DataLoader runs with batch_size=None), so the
per-image Python overhead is a slice and a copy. The memory maps are opened lazily inside each
worker; only file names and small arrays travel to the workers. `make_loader` also sees to the workers'
resources: how many by default, the shared memory their batches travel in, their end with the program.
The device's part of a batch (and the feed that does it ahead of the step) is in feed.py.
"""

from __future__ import annotations

import atexit
import shutil
import weakref
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import PIPELINES
from ..errors import AlexNetError
from ..interrupt import ignore_stop_signals
from .augment import Augmentation, batch_buffer, sample_augmentations
from .handover import BatchSlots, as_arrays, delivered
from .stores import JpegStore, RawStore
from .workers import usable_cores


def default_workers(device: torch.device, processes_here: int = 1) -> int:
    """Loader processes when none are asked for, for each of `processes_here` training processes on this
    machine (data-parallel ranks). On a GPU: its share of the cores this process may use, less two, which
    the training process keeps (its own thread and the one that pins and stages batches), at most 16 (on
    an H200's 16 cores, 14 fed the most end to end: BENCHMARKS.md). None on the CPU, where a worker
    competes with the training threads for the same cores (slower on 2 cores: BENCHMARKS.md)."""
    if device.type != "cuda":
        return 0
    return max(1, min(16, usable_cores() // max(1, processes_here) - 2))


class TrainBatch(NamedTuple):
    """One training batch as the loader hands it over: the augmentation's draws, and the pixels in the
    form the pipeline gives them (exactly one of crops, inputs, images, encoded is set)."""
    labels: torch.Tensor    # (B,) int64
    corners: torch.Tensor   # (B, 2) the crops' (y, x) in the stored image
    flips: torch.Tensor     # (B,) bool
    alphas: torch.Tensor    # (B, 3) float32 colour-noise draws
    crops: torch.Tensor | None = None    # host: (B, c, c, 3) uint8, cropped and reflected
    inputs: torch.Tensor | None = None   # host on the CPU: (B, 3, c, c) float, the network's input
    images: torch.Tensor | None = None   # device: (B, S, S, 3) uint8 whole stored images
    encoded: torch.Tensor | None = None  # nvjpeg: the batch's JPEG files back to back (uint8) ...
    lengths: torch.Tensor | None = None  # ... and each one's length in bytes
    scale: float = 1.0      # what the crops are multiplied by after the colour noise (cuda-convnet: 1/1.1)
    slot: int = -1          # from a worker: the slot its crops, images or files came in (handover.py)


class EvalBatch(NamedTuple):
    images: torch.Tensor    # (B, S, S, 3) uint8, whole stored images
    labels: torch.Tensor    # (B,)
    slot: int = -1          # from a worker: the slot its images came in (handover.py)


class EpochKey(NamedTuple):
    """What a loader worker needs to build batch `batch` of an epoch (see `EpochKeys`)."""
    epoch: int
    pca_std: float
    batch: int


class _Batches(Dataset):
    """Batches of `batch_size` images per rank; with `world_size` ranks, global batch b is the
    `batch_size * world_size` images b*B*W ... (b+1)*B*W - 1 of the epoch's order, and rank r takes
    every W-th of them from the r-th. So each image is seen exactly once per epoch across the ranks,
    every rank has the same number of batches, and the last batch of a rank may be smaller (or empty).
    """

    def __init__(self, images: RawStore | JpegStore | str | Path, labels: np.ndarray, batch_size: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        if isinstance(images, (str, Path)):  # a raw .npy array file
            shape = np.load(images, mmap_mode="r", allow_pickle=False).shape
            images = RawStore(images, shape[0], shape[1])
        # A store opens its files in the process that reads (loader workers), never pickles them.
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.rank, self.world_size = rank, world_size
        self.augmentation: Augmentation | None = None  # TrainBatches on the CPU: the float work in workers
        self.slots: BatchSlots | None = None  # set by `make_loader` where its workers reuse their buffers

    def __len__(self) -> int:
        per_step = self.batch_size * self.world_size
        return (len(self.labels) + per_step - 1) // per_step

    def batch_bytes(self) -> int:
        """Bytes of one batch as a worker hands it over (in shared memory): whole stored images."""
        return self.largest_batch() * self.images.size ** 2 * 3

    def largest_batch(self) -> int:
        return min(self.batch_size, len(self.labels))

    def _indices(self, b: int, order: np.ndarray | None = None) -> np.ndarray:
        per_step = self.batch_size * self.world_size
        chunk = slice(b * per_step, (b + 1) * per_step)
        picked = order[chunk] if order is not None else np.arange(len(self.labels))[chunk]
        return picked[self.rank::self.world_size]

    def _buffer(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, int]:
        """A uint8 buffer for what a batch sends on, and its slot (-1: none reused)."""
        return self.slots.take(shape, torch.uint8) if self.slots else (batch_buffer(shape, torch.uint8), -1)

    def _whole_images(self, indices: np.ndarray) -> tuple[torch.Tensor, int]:
        """The stored images at `indices`, (B, S, S, 3) uint8, read straight into the buffer they are sent
        in (in a worker, shared memory), and its slot."""
        images, slot = self._buffer((len(indices), self.images.size, self.images.size, 3))
        self.images.read(indices, out=images.numpy())
        return images, slot


class TrainBatches(_Batches):
    """Batch b of the current epoch: a random crop (and reflection) of each image, uint8, or with the
    "device" and "nvjpeg" pipelines the stored images (or their JPEG bytes) and the crops' draws.

    The epoch's order is a permutation keyed by (seed, epoch); call `set_epoch` before iterating.
    Items are `TrainBatch`es, looked up by `EpochKey`.
    """

    def __init__(self, images_path: RawStore | JpegStore | str | Path, labels: np.ndarray, batch_size: int,
                 crop_size: int, seed: int, pca_std: float, flip: bool = True, rank: int = 0, world_size: int = 1,
                 augmentation: Augmentation | None = None, pipeline: str = "host", input_scale: float = 1.0) -> None:
        super().__init__(images_path, labels, batch_size, rank, world_size)
        if pipeline not in PIPELINES:
            raise ValueError(f"unknown input pipeline {pipeline!r}; choose from {', '.join(PIPELINES)}")
        if pipeline == "nvjpeg" and not isinstance(self.images, JpegStore):
            raise ValueError("the nvjpeg pipeline reads JPEG storage; this split stores raw pixels")
        # A CPU Augmentation here (host pipeline): the float work happens where the batch is built (in workers).
        self.augmentation, self.pipeline = augmentation if pipeline == "host" else None, pipeline
        self.crop_size, self.seed, self.pca_std, self.flip = crop_size, seed, pca_std, flip
        self.input_scale = input_scale
        self.epoch, self.start = 0, 0
        self.order = np.arange(len(labels))

    def set_epoch(self, epoch: int, pca_std: float | None = None, start: int = 0) -> None:
        """Draw epoch `epoch`'s order; the next iteration of a loader begins at batch `start` (a run
        resumed mid-epoch)."""
        self.epoch, self.start = epoch, start
        if pca_std is not None:
            self.pca_std = pca_std
        self.order = np.random.default_rng((self.seed, epoch)).permutation(len(self.labels))

    def batch_bytes(self) -> int:
        """Bytes of one batch as a worker hands it over: uint8 crops, float inputs (the float work done in
        the worker), whole images, or JPEG files (at their mean stored length)."""
        if self.pipeline == "nvjpeg":
            return int(self.largest_batch() * np.mean(self.images.index[:, 2])) if len(self.images.index) else 0
        if self.pipeline == "device":
            return super().batch_bytes()
        return self.largest_batch() * self.crop_size ** 2 * 3 * (4 if self.augmentation is not None else 1)

    def key(self, b: int) -> EpochKey:
        """The key of batch `b` of the current epoch."""
        return EpochKey(self.epoch, self.pca_std, b)

    def __getitem__(self, key: EpochKey) -> TrainBatch:
        if (key.epoch, key.pca_std) != (self.epoch, self.pca_std):  # a persistent worker follows the epoch
            self.set_epoch(key.epoch, key.pca_std, self.start)
        indices = self._indices(key.batch, self.order)
        c = self.crop_size
        corners, flips, alphas = sample_augmentations(self.seed, self.epoch, indices, self.images.size, c,
                                                      self.pca_std, self.flip)
        # cuda-convnet divides the crops by 1.1 inside the same `if` as the colour noise (convdata.py):
        # an epoch without noise (its late epochs) has undivided crops.
        batch = TrainBatch(torch.from_numpy(self.labels[indices]), torch.from_numpy(corners), torch.from_numpy(flips),
                           torch.from_numpy(alphas), scale=self.input_scale if self.pca_std > 0 else 1.0)
        # What is sent on as it is is written straight into shared memory in a worker (a reused slot's, or new).
        if self.pipeline == "device":
            images, slot = self._whole_images(indices)
            return batch._replace(images=images, slot=slot)
        if self.pipeline == "nvjpeg":
            parts = [self.images.encoded(int(i)) for i in indices]
            lengths = [len(part) for part in parts]
            encoded, slot = self._buffer((sum(lengths),))
            if parts:
                np.concatenate(parts, out=encoded.numpy())
            return batch._replace(encoded=encoded, slot=slot, lengths=torch.tensor(lengths, dtype=torch.int64))
        shared, slot = self._buffer((len(indices), c, c, 3)) if self.augmentation is None else (None, -1)
        pixels = self.images.crops(indices, corners, c, None if shared is None else shared.numpy())
        crops = shared if shared is not None else torch.from_numpy(pixels)
        for i in np.flatnonzero(flips):  # image by image: far faster than a negative-stride copy or a
            crops[i] = crops[i].flip(1)  # boolean-mask assignment (BENCHMARKS.md)
        if self.augmentation is not None:  # the pixels are not sent on once they are the network's input
            return batch._replace(inputs=self.augmentation.train_batch(crops, batch.corners, batch.flips, batch.alphas,
                                                                       batch.scale))
        return batch._replace(crops=crops, slot=slot)


class EvalBatches(_Batches):
    """Batch b in stored order (this rank's share): full stored uint8 images (B, S, S, 3) and labels."""

    def __getitem__(self, b: int) -> EvalBatch:
        indices = self._indices(b)
        images, slot = self._whole_images(indices)
        return EvalBatch(images, torch.from_numpy(self.labels[indices]), slot)


class EpochKeys(Sampler):
    """`EpochKey`s read from `batches` when an epoch's iteration starts.

    Worker processes hold copies of the dataset object; carrying the epoch in each key lets them stay
    alive across epochs (no start-up of every worker at every epoch) and still draw each epoch's order
    and augmentation exactly as `set_epoch` in the main process would.
    """

    def __init__(self, batches: TrainBatches) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches) - self.batches.start

    def __iter__(self):
        epoch, pca_std, start = self.batches.epoch, self.batches.pca_std, self.batches.start
        return iter([EpochKey(epoch, pca_std, b) for b in range(start, len(self.batches))])


PREFETCH = 4               # batches a worker may have made ahead of the consumer (the DataLoader's prefetch_factor)
HELD_BY_A_WORKER = PREFETCH + 1  # batches in shared memory a worker may hold: those made ahead, or its slots
SHARED_MEMORY = "/dev/shm"  # where workers' batches travel (torch's file-descriptor sharing on Linux)
BATCH_TIMEOUT_S = 600      # a worker's batch takes well under a second: ten minutes without one is a fault
WORKER_DIED = "DataLoader worker (pid"   # how torch's message of a dead worker begins


def loader_failure(error: BaseException) -> str | None:
    """One line for torch's news that the loader's workers failed, or None for any other error: a worker
    process died (the OOM killer, say; raised from the SIGCHLD handler at any point of the training
    process's work, or from its wait for a batch), or no batch came within BATCH_TIMEOUT_S."""
    if not isinstance(error, RuntimeError):
        return None
    said = " ".join(str(error).split())
    if WORKER_DIED in said:
        return f"a data-loading worker died ({said[:160].rstrip('. ')}; killed for lack of memory?)"
    if "DataLoader timed out" in said:
        return f"no batch came from the data-loading workers in {BATCH_TIMEOUT_S} s (a stalled disk, or a stuck worker?)"
    return None


def check_shared_memory(batches: _Batches, workers: int, beside: _Batches | None = None) -> None:
    """Refuse, in one line, a loader whose workers would run out of shared memory: HELD_BY_A_WORKER batches
    for each worker, and two more held by the main process; with `beside`, the same again for the batches
    of a loader with as many workers that runs while this one's hold their slots (validation during
    training). Short of it, a worker's batch cannot be sent, and the main process waited for ever (Docker
    gives containers 64 MB unless told otherwise)."""
    batch = batches.batch_bytes() + (beside.batch_bytes() if beside is not None else 0)
    if workers == 0 or batch == 0 or not Path(SHARED_MEMORY).is_dir():
        return
    free, need = shutil.disk_usage(SHARED_MEMORY).free, (HELD_BY_A_WORKER * workers + 2) * batch
    if need > free:
        fit = max(0, (free // batch - 2) // HELD_BY_A_WORKER)
        fewer = f"--workers {fit} or fewer" if fit else "--workers 0 (loading in the training process)"
        who = f"{workers} loader workers" if workers > 1 else "1 loader worker"
        who += " (and as many for validation)" if beside is not None else ""
        raise AlexNetError(f"{who} need{'s' if workers == 1 and beside is None else ''} about {_megabytes(need)} of "
                           f"shared memory and {SHARED_MEMORY} has {_megabytes(free)} free: use {fewer}, or give "
                           "the machine more (Docker: --shm-size 8g, or --ipc=host)")


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 10 * 2**20 else f"{n / 2**20:.1f} MB"


def make_loader(batches: _Batches, workers: int, device: torch.device, beside: _Batches | None = None) -> DataLoader:
    """A DataLoader over whole batches, in order, with `workers` processes (0 = in this process); `beside`:
    the batches of another loader with as many workers that will run beside it (`check_shared_memory`).

    For `TrainBatches` the loader can be iterated once per epoch after `batches.set_epoch(...)`: its
    workers persist and follow the epoch through `EpochKeys`. Workers hand their batches over as
    `handover.py` says: small fields as arrays, uint8 pixels or files in reused slots, made whole as each
    is yielded.
    """
    check_shared_memory(batches, workers, beside)
    keyed, in_workers = isinstance(batches, TrainBatches), workers > 0
    slots = None
    if in_workers and batches.augmentation is None:  # uint8 crops, whole images or JPEG files: not the CPU's floats
        slots = batches.slots = BatchSlots(workers, HELD_BY_A_WORKER)
    pin = device if device.type == "cuda" else None
    return _Loader(batches, slots, pin, batch_size=None, sampler=EpochKeys(batches) if keyed else None,
                   shuffle=False, collate_fn=as_arrays if in_workers else None, num_workers=workers,
                   pin_memory=pin is not None and not in_workers,  # else pinned as they are delivered
                   prefetch_factor=PREFETCH if in_workers else None, persistent_workers=keyed and in_workers,
                   worker_init_fn=ignore_stop_signals if in_workers else None,
                   timeout=BATCH_TIMEOUT_S if in_workers else 0,  # an error, not a wait for ever, if none comes
                   # Its own generator: starting an iteration draws a base seed, which from the global
                   # generator would shift the dropout masks of a run resumed mid-epoch.
                   generator=torch.Generator())


class _Loader(DataLoader):
    """A DataLoader whose workers are stopped when the program ends, if it is still iterating then.

    Its workers ignore SIGTERM (a scheduler sends it to the whole job, and the main process checkpoints
    first), while multiprocessing's exit hook stops daemonic children with SIGTERM and then waits for
    them: with a loader alive at exit (persistent workers, or an iteration left half-way) the program
    waited for ever. A batch from its workers is made whole as it is yielded (`delivered`)."""

    def __init__(self, dataset, slots: BatchSlots | None, pin: torch.device | None, **options) -> None:
        super().__init__(dataset, **options)
        self.slots, self.pin = slots, pin

    def __iter__(self):
        iterator = super().__iter__()
        if self.num_workers == 0:
            return iterator
        _LIVE_ITERATIONS.add(iterator)
        _WORKERS.update(getattr(iterator, "_workers", ()))
        return delivered(iterator, self.slots, self.pin)  # sent through `as_arrays` in the workers


_LIVE_ITERATIONS: weakref.WeakSet = weakref.WeakSet()
_WORKERS: weakref.WeakSet = weakref.WeakSet()  # their processes (multiprocessing keeps those alive referenced)


@atexit.register  # after multiprocessing's exit hook (torch imports it), so it runs first
def _stop_live_workers() -> None:
    for iterator in list(_LIVE_ITERATIONS):
        stop = getattr(iterator, "_shutdown_workers", None)  # what the iteration does when it is collected
        if stop is not None:
            stop()
    # A worker stuck in a read (a stalled disk) does not take its stop, and ignores SIGTERM: it would
    # hold the program's exit until its read ends, if ever. Its iteration may be gone already.
    for process in list(_WORKERS):
        if process.is_alive():
            process.kill()
