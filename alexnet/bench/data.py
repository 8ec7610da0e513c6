"""`alexnet bench data`: images per second of the training input pipeline against a plain reference.

Ours: what `alexnet train` runs, with each input pipeline asked for (`--pipelines`, as `train
--pipeline`). host: `TrainBatches` reads the stored pixels (raw arrays or JPEG shards, decoded in the
loader's workers), takes random crops and reflections, and `Augmentation.train_batch` applies the mean
image, PCA colour noise, float and layout: in the workers on the CPU, on the device on CUDA. device: the
workers gather whole stored images and all the rest runs on the device. nvjpeg: the workers gather JPEG
bytes and the GPU decodes them. Several prepared datasets (e.g. the same images with raw and with JPEG
storage) are timed in one run against one reference; each through `feed.InputFeed`, the
trainer's own feed.

The reference a user would otherwise write: the same stored images as JPEG files (quality 90) in an
image-folder tree, a `torch.utils.data.Dataset` that opens each with PIL, takes a random crop and
reflection, converts to a float tensor and normalises it per channel, batched by a `DataLoader`
with the same worker count, batch size and crop. Both produce the same number of images.

With `--train-preset NAME` it also measures the pipeline end to end: the same loader feeding training
steps of that network (the trainer's `train_step` with the device's speed defaults), which is what a
GPU sees during a real epoch, and the seconds one ILSVRC-2012 epoch (1,281,167 images) would take.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..data.augment import crop_size_for
from ..data.feed import pipeline_problem
from ..data.loader import default_workers
from ..data.pipeline import TrainingInput
from ..data.stores import DECODER, JPEG_QUALITY, JpegStore
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError
from ..model import build_model, mean_image_for
from ..presets import get_preset
from ..training.step import resolve_speed
from .train import time_steps, training_step


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


def _write_jpegs(dataset: PreparedDataset, n: int, folder: Path) -> list[Path]:
    """The first n training images as JPEG files (quality 90) in an image-folder tree: JPEG storage's own
    bytes as they are (the same files, and seconds for 50,000), raw storage's pixels encoded 1,024 at a time."""
    store, labels, files = dataset.images["train"], dataset.labels["train"], []
    for start in range(0, n, 1024):
        chunk = range(start, min(n, start + 1024))
        pixels = None if isinstance(store, JpegStore) else store.read(np.asarray(chunk))
        for j, i in enumerate(chunk):
            path = folder / f"class{int(labels[i]):04d}" / f"{i:07d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            if pixels is None:
                path.write_bytes(store.encoded(i))
            else:
                Image.fromarray(pixels[j]).save(path, quality=JPEG_QUALITY)
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


def sustained_images(workers: int, batch_size: int, warmup: int) -> int:
    """Images to read for a loader figure that the workers' head start moves by a tenth at most (see
    `head_start_note`), and at least 4,096: with 14 workers and batches of 128, 18,176."""
    return max(4096, 10 * workers * batch_size + warmup * batch_size)


def head_start_note(images: int, workers: int, batch_size: int, warmup: int) -> str | None:
    """The workers start together, and the clock only after the first batches: by then each has made about
    a batch more, which the timed loop gets free. Where that could be over a tenth of the images read (the
    H200's 1,024 with 16 workers read at 149,000 images/s, 2026-11-26), the rate is not the loader's."""
    early, timed = workers * batch_size, max(1, images - warmup * batch_size)
    if early * 10 <= timed:
        return None
    return (f"about {early} images ({workers} workers x a batch of {batch_size}) are made before the clock starts, "
            f"{min(1.0, early / timed):.0%} of the {timed} timed: the loader's figure is too high by up to that "
            f"much; --images {10 * early + warmup * batch_size} or more gives a sustained rate")


def _input(dataset: PreparedDataset, n: int, batch_size: int, workers: int, dev: torch.device, pipeline: str,
           preset: str, in_workers: bool | None = None, ahead: bool = True) -> TrainingInput:
    """The trainer's own input (`data.pipeline.TrainingInput`) over the first n training images, with the
    recipe of `preset` (crop fraction, mean crop, colour noise)."""
    model, recipe = get_preset(preset).model, get_preset(preset).recipe
    crop = crop_size_for(dataset.size, recipe.crop_fraction)
    return TrainingInput(dataset, recipe, mean_image_for(model, dataset.mean_image), crop=crop, seed=0, device=dev,
                         pipeline=pipeline, workers=workers, batch_size=batch_size, images=n,
                         float_work_in_workers=in_workers, ahead=ahead)


def _end_to_end(inputs: TrainingInput, name: str, preset: str, num_classes: int, dev: torch.device,
                timed_batches: int, log=print) -> tuple[float, float]:
    """Images per second of loader + float work + training steps of `preset`, over `timed_batches`
    batches after the model is compiled and warmed on a synthetic batch (so compilation is not timed
    and the loader's prefetch queue does not fill while the model compiles); and of the same step alone
    on that synthetic batch, timed just before, for the overlap."""
    speed = resolve_speed(dev)
    step = training_step(build_model(preset, num_classes), dev, speed, get_preset(preset).recipe, num_classes)
    batch, crop = inputs.batches.batch_size, inputs.batches.crop_size
    x = torch.randn(batch, 3, crop, crop, device=dev)
    y = torch.randint(0, num_classes, (batch,), device=dev)
    steps_alone = max(1, min(timed_batches, 200))
    step_rate = steps_alone * len(y) / time_steps(lambda: step(x, y, 1 / len(y)), 3, steps_alone, dev)
    log(f"  end to end ({name} pipeline): {preset} network ({speed.describe()}) warmed, its step alone "
        f"{step_rate:.0f} images/s; timing {timed_batches} batches ...")

    def consume(batch):
        x, labels = batch
        step(x, labels, 1 / len(labels))
        return x.shape[0]

    warmup = 5
    epochs = (batch for epoch in itertools.count(1) for batch in inputs.epoch(epoch))  # one set of workers
    limited = itertools.islice(epochs, warmup + timed_batches)
    rate, _ = _images_per_second(limited, consume, warmup, sync=dev)
    epochs.close()
    return rate, step_rate


def _ours(inputs: TrainingInput, dev: torch.device, warmup: int) -> float:
    """The trainer's input path alone: stored bytes -> the network's input on the device."""
    def consume(batch):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return batch[0].shape[0]

    return _images_per_second(inputs.epoch(1), consume, warmup)[0]


def _workers_alone(inputs: TrainingInput, workers: int, warmup: int) -> float:
    """The host pipeline's workers as they run for a GPU: stored bytes -> cropped, reflected uint8 batches
    (the float work is the device's), on this machine's cores. What a GPU machine's CPUs must sustain."""
    inputs.batches.set_epoch(1)
    return _images_per_second(inputs.loader, lambda b: len(b.labels), warmup)[0]


def _reference(dataset: PreparedDataset, n: int, batch_size: int, workers: int, dev: torch.device,
               warmup: int, log) -> float:
    mean_rgb = np.asarray(dataset.manifest["statistics"]["mean_rgb"]) / 255.0
    std_rgb = np.sqrt(np.diag(np.asarray(dataset.manifest["statistics"]["rgb_covariance"])))
    with tempfile.TemporaryDirectory(prefix="alexnet-bench-") as tmp:
        log(f"  writing {n} JPEG files for the reference (not timed) ...")
        files = _write_jpegs(dataset, n, Path(tmp))
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


def _usable(dataset: PreparedDataset, pipeline: str, dev: torch.device) -> str | None:
    """Why `pipeline` cannot run on this dataset and device (the trainer's own check), or None."""
    return pipeline_problem(pipeline, dataset.manifest.get("storage", "raw"), dataset.root, dev)


def bench_data(data: str | Path | list, workers: int | None = None, batch_size: int = 128, images: int | None = None,
               device: str | None = "cpu", train_preset: str | None = None, timed_batches: int = 400,
               pipelines: list[str] | tuple[str, ...] = ("host",), ahead: bool = True, log=print) -> dict:
    """Ours on each dataset given (e.g. one prepared with raw and one with JPEG storage) with each input
    pipeline, and the reference on the first one's images, in one run; with `train_preset`, the first
    dataset also end to end with each pipeline. The input follows the recipe of `train_preset` (or paper).
    Without `workers`, train's default worker count on that device, so the figure is what `train` gets;
    without `images`, enough for a sustained rate (`sustained_images`), as far as the datasets hold them;
    `ahead=False` feeds from the training thread on its own stream (on CUDA train stages batches ahead)."""
    datasets = [PreparedDataset(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    dev = resolve_device(device)
    workers = default_workers(dev) if workers is None else workers
    first, preset = datasets[0], train_preset or "paper"
    warmup = 2
    n = min([images or sustained_images(workers, batch_size, warmup)] + [len(d.labels["train"]) for d in datasets])
    if n < batch_size * (warmup + 2):
        batch_size = max(1, n // (warmup + 2))
    crop = crop_size_for(first.size, get_preset(preset).recipe.crop_fraction)
    log(f"bench data: {n} images of {first.size}x{first.size}, crops {crop}, batch {batch_size}, {workers} worker(s), "
        f"float work on {dev}" + (" (in the workers with the host pipeline)" if dev.type == "cpu" and workers else ""))
    runs = [run for dataset in datasets for run in _loader_runs(dataset, n, batch_size, workers, dev, pipelines,
                                                                preset, warmup, ahead, log)]
    if not runs:
        raise AlexNetError("bench data: no pipeline could run on these datasets and this device")
    baseline = _reference(first, n, batch_size, workers, dev, warmup, log)
    log(f"  reference (JPEG + PIL + DataLoader): {baseline:9.0f} images/s")
    for run in runs:
        run["speedup"] = run["images_per_second"] / baseline if baseline > 0 else float("inf")
        log(f"  speed-up, {run['storage']} storage, {run['pipeline']} pipeline: {run['speedup']:.1f}x")
    result = {**runs[0], "runs": runs, "baseline_images_per_second": baseline, "workers": workers,
              "batch_size": batch_size, "images": n, "size": first.size, "crop": crop, "device": str(dev),
              "notes": [note] if (note := head_start_note(n, workers, batch_size, warmup)) else []}
    if train_preset:
        result.update(train_preset=train_preset,
                      end_to_end=_end_to_end_runs(first, batch_size, workers, dev, pipelines, train_preset,
                                                  timed_batches, runs, ahead, log))
        best = max(result["end_to_end"], key=lambda r: r["images_per_second"])
        result.update(train_images_per_second=best["images_per_second"],
                      imagenet_epoch_seconds=best["imagenet_epoch_seconds"])
    return result


def _loader_runs(dataset: PreparedDataset, n: int, batch_size: int, workers: int, dev: torch.device,
                 pipelines, preset: str, warmup: int, ahead: bool, log) -> list[dict]:
    """Ours alone on one dataset with each pipeline (and, on the CPU, the host workers as for a GPU)."""
    runs, storage = [], dataset.manifest.get("storage", "raw")
    for name in pipelines:
        why_not = _usable(dataset, name, dev)
        if why_not:
            log(f"  ours ({storage} storage, {name} pipeline): not run ({why_not})")
            continue
        rate = _ours(_input(dataset, n, batch_size, workers, dev, name, preset, ahead=ahead), dev, warmup)
        decoder = {"decoder": DECODER.split(" (")[0]} if storage == "jpeg" and name != "nvjpeg" else {}
        runs.append({"data": str(dataset.root), "storage": storage, "pipeline": name, "images_per_second": rate,
                     **decoder})
        log(f"  ours ({storage} storage, {name} pipeline, {dataset.root.name}): {rate:9.0f} images/s"
            + (f"  (JPEG decoder: {DECODER})" if decoder else ""))
        if name == "host" and dev.type == "cpu" and workers:  # what a GPU machine's workers do, timed here
            inputs = _input(dataset, n, batch_size, workers, dev, name, preset, in_workers=False)
            rate = _workers_alone(inputs, workers, warmup)
            runs.append({"data": str(dataset.root), "storage": storage, "pipeline": "host (uint8, as for a GPU)",
                         "images_per_second": rate, "per_worker": rate / workers, **decoder})
            log(f"  ours ({storage} storage, host pipeline's workers as for a GPU: uint8 crops): {rate:9.0f} "
                f"images/s, {rate / workers:.0f} per worker")
    return runs


def _end_to_end_runs(first: PreparedDataset, batch_size: int, workers: int, dev: torch.device, pipelines,
                     preset: str, timed_batches: int, runs: list[dict], ahead: bool, log) -> list[dict]:
    results = []
    # Whole batches only: a smaller last batch would make torch.compile compile once more, inside
    # the timed window (a real run pays that once per run, not per epoch).
    whole = len(first.labels["train"]) // batch_size * batch_size
    for name in (p for p in pipelines if not _usable(first, p, dev)):
        inputs = _input(first, whole, batch_size, workers, dev, name, preset, ahead=ahead)
        rate, step_rate = _end_to_end(inputs, name, preset, first.num_classes, dev, timed_batches, log)
        epoch_seconds = IMAGENET_TRAIN_IMAGES / rate if rate > 0 else float("inf")
        loader_rate = next((r["images_per_second"] for r in runs
                            if r["data"] == str(first.root) and r["pipeline"] == name), None)
        # overlap: end to end against the slower of its two parts; 1.0 = the two hide each other fully
        slower = min(step_rate, loader_rate) if loader_rate else step_rate
        overlap = rate / slower if slower > 0 else 0.0
        results.append({"pipeline": name, "images_per_second": rate, "step_images_per_second": step_rate,
                        "loader_images_per_second": loader_rate, "overlap": overlap,
                        "imagenet_epoch_seconds": epoch_seconds})
        log(f"  end to end ({name} pipeline, loader + {preset} training): {rate:9.0f} images/s, "
            f"{overlap:.2f} of the slower part (step alone {step_rate:.0f}, loader alone "
            f"{f'{loader_rate:.0f}' if loader_rate else 'not timed'}); one ILSVRC-2012 epoch "
            f"({IMAGENET_TRAIN_IMAGES:,} images) would take {epoch_seconds:.0f} s")
    return results


def record_line(result: dict) -> str:
    """The BENCHMARKS.md line for a `bench_data` result."""
    ours = ", ".join(f"{r['storage']} storage{' (' + r['decoder'] + ')' if 'decoder' in r else ''}, {r['pipeline']} "
                     f"pipeline {r['images_per_second']:.0f} images/s ({r['speedup']:.1f}x)" for r in result["runs"])
    line = (f"{ours} vs reference {result['baseline_images_per_second']:.0f} (JPEG + PIL + DataLoader), "
            f"{result['images']} images, {result['workers']} workers, batch {result['batch_size']}, "
            f"{result['size']} px stored, crops {result['crop']}, float work on {result['device']}")
    if result.get("train_preset"):
        line += f"; end to end with {result['train_preset']} training: " + ", ".join(
            f"{r['pipeline']} pipeline {r['images_per_second']:.0f} images/s, overlap {r['overlap']:.2f} (step alone "
            f"{r['step_images_per_second']:.0f}), {r['imagenet_epoch_seconds']:.0f} s per ILSVRC-2012 epoch"
            for r in result["end_to_end"])
    return line
