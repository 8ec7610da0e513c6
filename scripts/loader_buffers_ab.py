"""The host pipeline's workers as they run for a GPU, with their batches' shared-memory buffers reused
(`data/slots.py`, what `alexnet train` runs) against a fresh buffer for every batch (as before), in
alternating rounds of one run.

Both arms do what a GPU machine's loader does with each batch: a worker decodes, crops and reflects it
into shared memory, and the training process copies it out (on a GPU, into pinned memory for the copy
to the device; here into ordinary memory). The fresh arm makes that copy in the consumer, the reused
arm in the loader, where `train` makes it.

    python scripts/loader_buffers_ab.py --data DATA [--workers 2] [--images 8192] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib

import torch

import alexnet.data.slots as slots_module
from alexnet.bench.data import _images_per_second, _input
from alexnet.data.augment import batch_buffer
from alexnet.data.prepared import PreparedDataset


@contextlib.contextmanager
def fresh_buffers():
    """Every batch in a new buffer, none handed back: the loader as it was before the slots."""
    take = slots_module.BatchSlots.take
    slots_module.BatchSlots.take = lambda self, shape, dtype: (batch_buffer(shape, dtype), -1)
    try:
        yield
    finally:
        slots_module.BatchSlots.take = take


def rate(dataset: PreparedDataset, images: int, workers: int, fresh: bool) -> float:
    inputs = _input(dataset, images, 128, workers, torch.device("cpu"), "host", "paper", in_workers=False)
    inputs.batches.set_epoch(1)

    def consume(batch) -> int:
        if fresh:  # the copy out of shared memory, which the loader makes itself when it reuses slots
            batch.crops.clone()
        return len(batch.labels)

    with fresh_buffers() if fresh else contextlib.nullcontext():
        return _images_per_second(inputs.loader, consume, warmup=4)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared dataset (JPEG storage at 256 px, say)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dataset = PreparedDataset(args.data)
    for r in range(1, args.rounds + 1):
        fresh = rate(dataset, args.images, args.workers, fresh=True)
        reused = rate(dataset, args.images, args.workers, fresh=False)
        print(f"round {r}: {args.workers} workers, fresh buffers {fresh:6.0f} images/s, reused {reused:6.0f} "
              f"({reused / fresh:.2f}x); per worker {fresh / args.workers:.0f} -> {reused / args.workers:.0f}")


if __name__ == "__main__":
    main()
