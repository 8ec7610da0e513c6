"""Shared-memory buffers that loader workers reuse for their batches, lent to the training process and
handed back by it once the batch has been copied out.

Why: a worker's batch travels to the training process in shared memory. A fresh buffer for each batch
(128 crops of 224 x 224 x 3 bytes: 19 MB; whole images and JPEG files for the other pipelines) costs the
worker about 11 ms of page faults and zeroing before a pixel is written, against 1.5 ms to write a buffer it has used before (2-core reference machine;
a worker's whole batch takes about 65 ms, BENCHMARKS.md). Reusing them is safe only once the training
process is done with a batch: each slot has a flag in shared memory, set by the worker that fills the
slot and cleared by the training process (`hand_back`) after it has its own copy (the pinned copy made
for the GPU, or a plain one). A worker that finds none of its slots free makes a fresh buffer, as
before: it never waits, so a consumer that holds batches can slow it but not stop it.
"""

from __future__ import annotations

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
