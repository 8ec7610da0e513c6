"""How a loader worker's batch (for training, or of whole images for evaluation) reaches the main process:
its uint8 pixels or files in a shared-memory buffer the worker reuses (`BatchSlots`), lent to the main
process and handed back by it once the batch has been copied out; its small fields inside the batch's
message (`as_arrays`); both made whole as the loader yields the batch (`delivered`).

Why slots: a worker's batch travels to the main process in shared memory. A fresh buffer for each batch
(128 crops of 224 x 224 x 3 bytes: 19 MB; whole images and JPEG files for the other pipelines and for
evaluation) costs the worker about 11 ms of page faults and zeroing before a pixel is written, against
1.5 ms to write a buffer it has used before (2-core reference machine; a worker's whole batch takes about
65 ms, BENCHMARKS.md). Reusing them is safe only once the main process is done with a batch: each slot has
a flag in shared memory, set by the worker that fills the slot and cleared by the main process
(`hand_back`) after it has its own copy (the pinned copy made for the GPU, or a plain one). A worker that
finds none of its slots free makes a fresh buffer, as before: it never waits, so a consumer that holds
batches can slow it but not stop it.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch.utils.data import get_worker_info

from .augment import batch_buffer


class BatchSlots:
    def __init__(self, workers: int, per_worker: int) -> None:
        """`per_worker` slots for each of `workers` processes: one more than the batches a worker can have
        made ahead of the consumer, so that in a steady run every batch goes into a reused slot."""
        self.per_worker = per_worker
        self.lent = torch.zeros(workers * per_worker, dtype=torch.uint8).share_memory_()  # 1: the consumer's
        self._buffers: dict[int, torch.Tensor] = {}  # in a worker: its slots' buffers, made when first needed

    def __getstate__(self) -> dict:  # the flags travel (shared); buffers belong to the worker that made them
        return {"per_worker": self.per_worker, "lent": self.lent}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _buffers={})

    def take(self, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, int]:
        """A buffer of `shape` for this worker's next batch, and its slot (-1: a fresh buffer, none reused;
        always so outside a worker)."""
        worker = get_worker_info()
        if worker is None or worker.id * self.per_worker >= len(self.lent):
            return batch_buffer(shape, dtype), -1
        size = math.prod(shape)
        for slot in range(worker.id * self.per_worker, (worker.id + 1) * self.per_worker):
            if self.lent[slot]:
                continue
            buffer = self._buffers.get(slot)
            if buffer is None or buffer.dtype != dtype or buffer.numel() < size:
                buffer = self._buffers[slot] = batch_buffer((size,), dtype)
            self.lent[slot] = 1  # before the first pixel: the consumer clears it only after its copy
            return buffer[:size].view(shape), slot
        return batch_buffer(shape, dtype), -1

    def hand_back(self, slot: int) -> None:
        """The consumer has its own copy of the batch in `slot`: its worker may fill it again."""
        if slot >= 0:
            self.lent[slot] = 0


SENT_AS_ARRAYS = ("labels", "corners", "flips", "alphas", "lengths")  # a batch's small fields (those it has)
LENT = ("crops", "images", "encoded")  # the field a worker's slot may hold, whichever the pipeline sends


def as_arrays(batch):
    """A worker's batch as it is sent (the loader's collate_fn, run in the worker): its small fields as numpy
    arrays, which travel inside the batch's message, where each tensor would travel as a shared-memory file
    of its own, made, passed and mapped (about 1.3 ms a batch for four, BENCHMARKS.md)."""
    return batch._replace(**{name: getattr(batch, name).numpy() for name in SENT_AS_ARRAYS
                             if getattr(batch, name, None) is not None})


def delivered(batches, slots: BatchSlots | None, pin: torch.device | None):
    """The loader's batches made whole again: the small fields tensors, pinned for the copy to
    `pin` (a GPU); a batch in a worker's slot copied out (pinned too) before the slot goes back to its worker;
    one in a fresh buffer (no slot was free) pinned as well, so that every batch reaches the GPU alike.
    This process keeps each slot mapped (`held`), so that reading the next batch in it costs no page faults.
    A slot of a batch never yielded (an iteration left half-way) stays lent: its worker makes fresh buffers
    instead, which is slower, never wrong."""
    held: dict[int, torch.UntypedStorage] = {}
    for batch in batches:
        with torch.cuda.device(pin) if pin is not None else contextlib.nullcontext():  # as DataLoader pins
            whole = {name: torch.from_numpy(getattr(batch, name)) for name in SENT_AS_ARRAYS
                     if getattr(batch, name, None) is not None}
            name = next((name for name in LENT if getattr(batch, name, None) is not None), None)
            if batch.slot >= 0:
                lent = getattr(batch, name)
                held[batch.slot] = lent.untyped_storage()
                whole[name] = torch.empty(lent.shape, dtype=lent.dtype, pin_memory=pin is not None).copy_(lent)
                slots.hand_back(batch.slot)
            elif name is not None:
                whole[name] = getattr(batch, name)  # a fresh buffer: pinned below, where the copy is for a GPU
            if pin is not None:
                whole = {name: value.pin_memory() for name, value in whole.items()}
            batch = batch._replace(**whole, slot=-1)
        yield batch
