"""How a training batch from the loader becomes the network's input on the training device.

Whatever the pipeline (`config.PIPELINES`), the loader's workers hand over a `loader.TrainBatch`: uint8 crops
(host), whole stored images (device) or JPEG files (nvjpeg). `network_input` finishes it on the device;
`InputFeed` does that for every batch of an epoch, on CUDA in a thread and on a side stream of their own
(`device_batches`, `in_background`), so that copies and decoding overlap the step.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, NamedTuple

import torch

from ..errors import AlexNetError
from .augment import Augmentation
from .device_decode import nvjpeg_decoder
from .loader import TrainBatch


def pipeline_problem(pipeline: str, storage: str, root, device: torch.device) -> str | None:
    """Why `pipeline` cannot run on the dataset at `root` (stored as `storage`) on `device`, in one line;
    None when it can. The trainer refuses with it, `bench data` skips and says it."""
    if pipeline != "nvjpeg":
        return None
    if storage != "jpeg":
        return f"--pipeline nvjpeg decodes JPEG storage; {root} stores raw pixels (use --pipeline device or host)"
    if device.type != "cuda":
        return f"--pipeline nvjpeg decodes on a CUDA device; training runs on {device}"
    try:
        nvjpeg_decoder()
    except AlexNetError as exc:
        return str(exc)
    return None


def network_input(batch: TrainBatch, augmentation: Augmentation, decode: Callable | None = None) -> torch.Tensor:
    """The network's input for a training batch, whatever the pipeline: the one place the trainer and the
    benchmarks turn a `TrainBatch` into (B, 3, c, c) floats on the augmentation's device. `decode` (nvjpeg):
    encoded bytes and lengths -> (B, S, S, 3) uint8 images on the device."""
    if batch.inputs is not None:
        return batch.inputs
    if batch.crops is not None:
        return augmentation.train_batch(batch.crops, batch.corners, batch.flips, batch.alphas, batch.scale)
    images = batch.images if batch.images is not None else decode(batch.encoded, batch.lengths, augmentation.device)
    return augmentation.train_batch_from_stored(images, batch.corners, batch.flips, batch.alphas, batch.scale)


def device_batches(batches: Iterable[TrainBatch], augmentation: Augmentation, decode: Callable | None = None,
                   ahead: bool = False) -> Iterator[tuple[TrainBatch, torch.Tensor, torch.Tensor]]:
    """(batch, input, labels), the last two on the augmentation's device. With `ahead` on CUDA, the next
    batches' copies, decoding and augmentation run in a thread of their own, on a side stream, while this
    thread queues the steps: the nvJPEG decoder waits on the host until its batch is decoded, and that
    wait must not hold up the step (in this thread it made decode and step run one after the other:
    BENCHMARKS.md, 2026-11-27). A step's stream waits, on the device only, for its batch to be ready."""
    dev = augmentation.device
    if not (ahead and dev.type == "cuda"):
        for batch in batches:
            yield batch, network_input(batch, augmentation, decode), batch.labels.to(dev, non_blocking=True)
        return
    side, main = torch.cuda.Stream(dev), torch.cuda.current_stream(dev)

    def stage(batch: TrainBatch):
        with torch.cuda.device(side.device), torch.cuda.stream(side):  # a thread starts on device 0
            x, y = network_input(batch, augmentation, decode), batch.labels.to(dev, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(side)
        return batch, x, y, ready

    staged = in_background(batches, stage)
    try:
        for batch, x, y, ready in staged:
            main.wait_event(ready)
            x.record_stream(main)  # made on the side stream, used on this one: not reused before it is done
            y.record_stream(main)
            yield batch, x, y
    finally:
        staged.close()  # stops the thread now, also when the consumer stops early


_END = object()


def in_background(items: Iterable, stage: Callable, depth: int = 2) -> Iterator:
    """stage(item) for each of `items`, in order, worked out in a thread up to `depth` results ahead of the
    consumer. An exception there is raised here; closing the generator stops the thread (after the item
    it is on)."""
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(result) -> bool:
        while not stop.is_set():
            try:
                results.put(result, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((stage(item), None)):
                    return
            hand_over((_END, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over((None, exc))

    thread = threading.Thread(target=produce, name="alexnet-input-staging", daemon=True)
    thread.start()
    try:
        while True:
            result, error = results.get()
            if error is not None:
                raise error
            if result is _END:
                return
            yield result
    finally:
        stop.set()
        thread.join()


class InputFeed(NamedTuple):
    """How the trainer's batches become (batch, input, labels) on the device: the preprocessing, the
    nvjpeg pipeline's decoder, and whether the next batches are prepared ahead, in a thread and on a side
    stream of their own (`device_batches`)."""
    augmentation: Augmentation
    decode: Callable | None = None
    ahead: bool = False

    def __call__(self, batches: Iterable[TrainBatch]) -> Iterator[tuple[TrainBatch, torch.Tensor, torch.Tensor]]:
        return device_batches(batches, self.augmentation, self.decode, self.ahead)

    @classmethod
    def for_pipeline(cls, augmentation: Augmentation, pipeline: str, ahead: bool = True) -> "InputFeed":
        """The feed `alexnet train` (and `bench data`) uses: on CUDA every pipeline prepares the next
        batches ahead, so that their copies to the device (and nvJPEG's decoding) overlap the step; the
        host pipeline's copy had run on the step's own stream, between two steps. `ahead=False`: in the
        training thread and on its stream (`bench data --no-ahead`, to compare)."""
        return cls(augmentation, nvjpeg_decoder() if pipeline == "nvjpeg" else None, ahead=ahead)
