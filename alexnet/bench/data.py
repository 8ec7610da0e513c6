"""`alexnet bench data`: images per second of the training input pipeline against a plain reference.

Ours: what `alexnet train` runs. `TrainBatches` reads the stored pixels (raw arrays or JPEG shards,
decoded in the loader's workers), takes random crops and reflections, and `Preprocessor.train_batch`
applies the mean image, PCA colour noise, float and NCHW: in the workers on the CPU, on the device on
CUDA. Several prepared datasets (e.g. the same images with raw and with JPEG storage) are timed in one
run against one reference.

The reference a user would otherwise write: the same stored images as JPEG files (quality 90) in an
image-folder tree, a `torch.utils.data.Dataset` that opens each with PIL, takes a random crop and
reflection, converts to a float tensor and normalises it per channel, batched by a `DataLoader`
with the same worker count, batch size and crop. Both produce the same number of images.

With `--train-preset NAME` it also measures the pipeline end to end: the same loader feeding training
steps of that network (the trainer's `train_step` with the device's speed defaults), which is what a
GPU sees during a real epoch, and the seconds one ILSVRC-2012 epoch (1,281,167 images) would take.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..data.augment import Preprocessor, crop_size_for
from ..data.loader import TrainBatch, TrainBatches, make_loader
from ..data.stores import DECODER
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..model import build_model
from ..presets import get_preset
from ..training.speed import resolve_speed
from .train import fast_training


class _ReferenceJpegDataset(Dataset):
    def __init__(self, files: list[Path], labels: np.ndarray, crop: int, mean: np.ndarray, std: np.ndarray) -> None:
        self.files, self.labels, self.crop = files, labels, crop
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        img = Image.open(self.files[i]).convert("RGB")
        w, h = img.size
        x, y = np.random.randint(0, w - self.crop + 1), np.random.randint(0, h - self.crop + 1)
        img = img.crop((x, y, x + self.crop, y + self.crop))
        if np.random.rand() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        t = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return (t - self.mean) / self.std, int(self.labels[i])


def _write_jpegs(images: np.ndarray, labels: np.ndarray, folder: Path) -> list[Path]:
    files = []
    for i, (image, label) in enumerate(zip(images, labels)):
        path = folder / f"class{label:04d}" / f"{i:07d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(image)).save(path, quality=90)
        files.append(path)
    return files


def _images_per_second(batches, consume, warmup: int, sync: torch.device | None = None) -> tuple[float, int]:
    """Throughput over the batches after the first `warmup` (worker start-up is not counted).
    With `sync` a CUDA device, the clock is read only after the device has finished the work."""
    def wait():
        if sync is not None and sync.type == "cuda":
            torch.cuda.synchronize(sync)

    count, start = 0, None
    for b, batch in enumerate(batches):
        images = consume(batch)
        if b + 1 == warmup:
            wait()
            start = time.perf_counter()
        elif b + 1 > warmup:
            count += images
    wait()
    elapsed = time.perf_counter() - start if start is not None else 0.0
    return (count / elapsed if elapsed > 0 else 0.0), count


IMAGENET_TRAIN_IMAGES = 1_281_167


def _end_to_end(batches: TrainBatches, pre: Preprocessor, preset: str, num_classes: int, workers: int,
                dev: torch.device, timed_batches: int, log=print) -> float:
    """Images per second of loader + float work + training steps of `preset`, over `timed_batches`
    batches after the model is compiled and warmed on a synthetic batch (so compilation is not timed
    and the loader's prefetch queue does not fill while the model compiles)."""
    speed = resolve_speed(dev)
    learner = fast_training(build_model(preset, num_classes), dev, speed, get_preset(preset).recipe)
    x = torch.randn(batches.batch_size, 3, batches.crop_size, batches.crop_size, device=dev)
    y = torch.randint(0, num_classes, (batches.batch_size,), device=dev)
    for _ in range(3):
        learner.step(x, y, 1 / len(y), None)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    log(f"  end to end: {preset} network ({speed.describe()}) warmed; timing {timed_batches} batches ...")

    loader = make_loader(batches, workers, dev)  # one set of workers for all epochs, as in training

    def epochs():
        epoch = 1
        while True:
            batches.set_epoch(epoch)
            yield from loader
            epoch += 1

    def consume(batch: TrainBatch):
        x = _inputs(pre, batch).to(dev, non_blocking=True)
        labels = batch.labels.to(dev, non_blocking=True)
        learner.step(x, labels, 1 / len(labels), None)
        return x.shape[0]

    warmup = 5
    stream = epochs()
    limited = (next(stream) for _ in range(warmup + timed_batches))

    rate, _ = _images_per_second(limited, consume, warmup, sync=dev)
    stream.close()  # the workers stop when `loader` goes out of scope
    return rate


def _inputs(pre: Preprocessor, batch: TrainBatch) -> torch.Tensor:
    """The network's input for a batch, exactly as `training.epoch.train_epoch` takes it."""
    return batch.inputs if batch.inputs is not None else \
        pre.train_batch(batch.crops, batch.corners, batch.flips, batch.alphas)


def _pipeline(dataset: PreparedDataset, n: int, batch_size: int, workers: int,
              dev: torch.device) -> tuple[Preprocessor, TrainBatches]:
    """The trainer's preprocessing and batches over the first n training images (float work in the
    loader's workers on the CPU when there are workers, as in `training.trainer.prepare_inputs`)."""
    crop = crop_size_for(dataset.size, 7 / 8)
    pre = Preprocessor(dataset.mean_image, dataset.eigenvalues, dataset.eigenvectors, crop, "aligned", dev)
    batches = TrainBatches(dataset.images["train"], dataset.labels["train"][:n], batch_size, crop, seed=0,
                           pca_std=0.1, preprocessor=pre if dev.type == "cpu" and workers else None)
    return pre, batches


def _ours(dataset: PreparedDataset, n: int, batch_size: int, workers: int, dev: torch.device,
          warmup: int) -> float:
    """The trainer's input path over the first n training images: stored pixels -> crops in the loader's
    workers, float work in the workers on the CPU (as `alexnet train` with workers) or on the device."""
    pre, batches = _pipeline(dataset, n, batch_size, workers, dev)
    batches.set_epoch(1)

    def consume(batch: TrainBatch):
        x = _inputs(pre, batch)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return x.shape[0]

    return _images_per_second(make_loader(batches, workers, dev), consume, warmup)[0]


def _reference(dataset: PreparedDataset, n: int, batch_size: int, workers: int, dev: torch.device,
               warmup: int, log) -> float:
    mean_rgb = np.asarray(dataset.manifest["statistics"]["mean_rgb"]) / 255.0
    std_rgb = np.sqrt(np.diag(np.asarray(dataset.manifest["statistics"]["rgb_covariance"])))
    with tempfile.TemporaryDirectory(prefix="alexnet-bench-") as tmp:
        log(f"  writing {n} JPEG files for the reference (not timed) ...")
        files = _write_jpegs(dataset.read("train", np.arange(n)), dataset.labels["train"][:n], Path(tmp))
        reference = _ReferenceJpegDataset(files, dataset.labels["train"][:n], crop_size_for(dataset.size, 7 / 8),
                                          mean_rgb, std_rgb)
        loader = DataLoader(reference, batch_size=batch_size, shuffle=True, num_workers=workers,
                            pin_memory=dev.type == "cuda")

        def consume(batch):
            x = batch[0].to(dev, non_blocking=True)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            return x.shape[0]

        return _images_per_second(loader, consume, warmup)[0]


def bench_data(data: str | Path | list, workers: int = 2, batch_size: int = 128, images: int = 4096,
               device: str | None = "cpu", train_preset: str | None = None, timed_batches: int = 400,
               log=print) -> dict:
    """Ours on each dataset given (e.g. one prepared with raw and one with JPEG storage) and the reference
    on the first one's images, in one run; with `train_preset`, the first one also end to end."""
    datasets = [PreparedDataset(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    dev = resolve_device(device)
    first = datasets[0]
    n = min([images] + [len(d.labels["train"]) for d in datasets])
    warmup = 2
    if n < batch_size * (warmup + 2):
        batch_size = max(1, n // (warmup + 2))
    log(f"bench data: {n} images of {first.size}x{first.size}, crops {crop_size_for(first.size, 7 / 8)}, "
        f"batch {batch_size}, {workers} worker(s), float work on {dev}"
        + (" in the workers" if dev.type == "cpu" and workers else ""))
    runs = []
    for dataset in datasets:
        rate = _ours(dataset, n, batch_size, workers, dev, warmup)
        storage = dataset.manifest.get("storage", "raw")
        runs.append({"data": str(dataset.root), "storage": storage, "images_per_second": rate,
                     **({"decoder": DECODER.split(" (")[0]} if storage == "jpeg" else {})})
        log(f"  ours ({storage} storage, {dataset.root.name}): {rate:9.0f} images/s"
            + (f"  (JPEG decoder: {DECODER})" if storage == "jpeg" else ""))
    baseline = _reference(first, n, batch_size, workers, dev, warmup, log)
    log(f"  reference (JPEG + PIL + DataLoader): {baseline:9.0f} images/s")
    for run in runs:
        run["speedup"] = run["images_per_second"] / baseline if baseline > 0 else float("inf")
        log(f"  speed-up, {run['storage']}: {run['speedup']:.1f}x")
    result = {**runs[0], "runs": runs, "baseline_images_per_second": baseline, "workers": workers,
              "batch_size": batch_size, "images": n, "size": first.size, "crop": crop_size_for(first.size, 7 / 8),
              "device": str(dev)}
    if train_preset:
        # Whole batches only: a smaller last batch would make torch.compile compile once more, inside
        # the timed window (a real run pays that once per run, not per epoch).
        whole = len(first.labels["train"]) // batch_size * batch_size
        pre, batches = _pipeline(first, whole, batch_size, workers, dev)
        rate = _end_to_end(batches, pre, train_preset, first.num_classes, workers, dev, timed_batches, log)
        result.update(train_preset=train_preset, train_images_per_second=rate,
                      imagenet_epoch_seconds=IMAGENET_TRAIN_IMAGES / rate if rate > 0 else float("inf"))
        log(f"  end to end (loader + {train_preset} training): {rate:9.0f} images/s; one ILSVRC-2012 epoch "
            f"({IMAGENET_TRAIN_IMAGES:,} images) would take {result['imagenet_epoch_seconds']:.0f} s")
    return result


def record_line(result: dict) -> str:
    """The BENCHMARKS.md line for a `bench_data` result."""
    ours = ", ".join(f"{r['storage']} storage{' (' + r['decoder'] + ')' if 'decoder' in r else ''} "
                     f"{r['images_per_second']:.0f} images/s ({r['speedup']:.1f}x)" for r in result["runs"])
    line = (f"{ours} vs reference {result['baseline_images_per_second']:.0f} (JPEG + PIL + DataLoader), "
            f"{result['images']} images, {result['workers']} workers, batch {result['batch_size']}, "
            f"{result['size']} px stored, crops {result['crop']}, float work on {result['device']}")
    if result.get("train_preset"):
        line += (f"; end to end with {result['train_preset']} training: {result['train_images_per_second']:.0f} "
                 f"images/s, {result['imagenet_epoch_seconds']:.0f} s per ILSVRC-2012 epoch")
    return line
