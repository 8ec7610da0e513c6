"""Two choices of the training loader's hand-over, each timed against the way it was before, in
alternating rounds of one run, with the host pipeline's workers as they run for a GPU (uint8 crops).

--compare buffers: each worker reuses its batches' shared-memory buffers (`data/handover.py`, what `alexnet
  train` runs) against a fresh buffer for every batch (for --pipeline device and nvjpeg, before the slots
  their batches were built in private memory and then copied into a fresh buffer: slower than this arm).
  Both arms copy each batch out once in the training process, as on a GPU (there into pinned memory, here
  into ordinary memory): the fresh arm in the consumer, the reused arm in the loader, where `train` makes
  it. Use 256 px JPEG storage.
--compare fields: a batch's small fields (labels, crop corners, reflections, colour draws) sent as arrays
  inside the batch's message (`handover.as_arrays`) against as tensors, each a shared-memory file of its
  own. This is a cost per batch, not per image: use small images (the demo's 32 px), where the workers'
  own work is slight and the hand-over shows.
--compare validation: validation's loader, timed whole (its workers' start included, as each epoch pays
  it): in the training process (as `train` validated before), with the run's workers and a fresh buffer
  for every batch, and with the run's workers and reused slots (what `train` and `evaluate` run now). On a
  GPU machine each batch is pinned for the GPU, as in training. `--split`: any split will do (whole images
  are read the same way) of thousands of 256 px JPEGs, like ILSVRC's 50,000; its first --images.

    python scripts/loader_ab.py --compare buffers --data DATA [--workers W] [--images 4096] [--rounds 3]
                                [--batch-size 128]
    python scripts/loader_ab.py --compare validation --data DATA [--split val] [--images 8192] [--workers W]
                                [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import time

import torch

import alexnet.data.handover as handover
from alexnet.bench.data import _images_per_second, _input
from alexnet.config import PIPELINES
from alexnet.data.augment import batch_buffer
from alexnet.data.handover import LENT
from alexnet.data.loader import EvalBatches, default_workers, make_loader
from alexnet.data.prepared import PreparedDataset
from alexnet.errors import AlexNetError

WARMUP = 4  # batches before the clock starts (the workers' start-up)

@contextlib.contextmanager
def as_before(compare: str):
    """The loader as it was before the choice: every batch in a new buffer, none handed back; or every
    small field sent as a tensor."""
    if compare == "buffers":
        take = handover.BatchSlots.take
        handover.BatchSlots.take = lambda self, shape, dtype: (batch_buffer(shape, dtype), -1)
        try:
            yield
        finally:
            handover.BatchSlots.take = take
    else:
        fields = handover.SENT_AS_ARRAYS
        handover.SENT_AS_ARRAYS = ()
        try:
            yield
        finally:
            handover.SENT_AS_ARRAYS = fields


def rate(dataset: PreparedDataset, args, before: bool) -> float:
    """Images per second through the loader over `args.images` images, epoch after epoch (workers kept)."""
    n = min(args.images, len(dataset.labels["train"]))
    inputs = _input(dataset, n, args.batch_size, args.workers, torch.device("cpu"), args.pipeline, "paper",
                    in_workers=False)
    rounds = max(1, -(-args.images // n))

    def epochs():
        for epoch in range(1, rounds + 1):
            inputs.batches.set_epoch(epoch)
            yield from inputs.loader

    def consume(batch) -> int:
        if before and args.compare == "buffers":  # the copy out of shared memory, made by the loader otherwise
            next(getattr(batch, name) for name in LENT if getattr(batch, name) is not None).clone()
        return len(batch.labels)

    with as_before(args.compare) if before else contextlib.nullcontext():
        batches = max(WARMUP + 1, args.images // args.batch_size)
        return _images_per_second(itertools.islice(epochs(), batches), consume, WARMUP)[0]


def validation_seconds(dataset: PreparedDataset, args, workers: int, fresh: bool) -> float:
    """Seconds to load the whole split as validation does (`runs.inference.predict_probabilities`'s loader)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    labels = dataset.labels[args.split][:args.images]
    batches = EvalBatches(dataset.images[args.split], labels, args.batch_size)
    started = time.perf_counter()
    with as_before("buffers") if fresh else contextlib.nullcontext():
        images = sum(len(batch.labels) for batch in make_loader(batches, workers, device))
    assert images == len(labels)
    return time.perf_counter() - started


def compare_validation(dataset: PreparedDataset, args) -> None:
    images = min(args.images, len(dataset.labels[args.split]))
    for r in range(1, args.rounds + 1):
        here = validation_seconds(dataset, args, 0, fresh=False)
        fresh = validation_seconds(dataset, args, args.workers, fresh=True)
        now = validation_seconds(dataset, args, args.workers, fresh=False)
        print(f"round {r}: validation of {images:,} {args.split} images: in the training process {images / here:6.0f} "
              f"images/s ({here:.2f} s); {args.workers} workers, fresh buffers {images / fresh:6.0f}; "
              f"{args.workers} workers, reused slots {images / now:6.0f} ({now:.2f} s, {here / now:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=("buffers", "fields", "validation"), required=True)
    parser.add_argument("--data", required=True, help="a prepared dataset")
    parser.add_argument("--workers", type=int, default=default_workers(torch.device("cuda")),
                        help="loader processes (default: train's on a GPU machine with these cores)")
    parser.add_argument("--images", type=int, default=8192, help="images to read in each arm of a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pipeline", choices=PIPELINES, default="host",
                        help="what the workers send: uint8 crops (host), whole images (device), JPEG files (nvjpeg)")
    parser.add_argument("--split", default="val", help="--compare validation: the split to load")
    args = parser.parse_args()
    dataset = PreparedDataset(args.data)
    if args.compare == "validation":
        return compare_validation(dataset, args)
    for r in range(1, args.rounds + 1):
        try:
            before, now = rate(dataset, args, before=True), rate(dataset, args, before=False)
        except AlexNetError as exc:
            raise SystemExit(f"loader_ab: {exc}") from None
        print(f"round {r}: {args.compare}, {args.pipeline}, {args.workers} workers: before {before:6.0f} images/s, "
              f"now {now:6.0f} ({now / max(before, 1e-9):.2f}x); "
              f"per worker {before / args.workers:.0f} -> {now / args.workers:.0f}")


if __name__ == "__main__":
    main()
