"""`alexnet bench data|prepare|train`: the project against a plain reference, in the same run."""

from __future__ import annotations

import argparse
import functools
import json
import sys

from ..config import MAX_BATCH, PIPELINES
from ..presets import PRESETS
from .arguments import add_device, add_output_flags, add_speed_flags, positive_int, whole


def add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks against a plain reference, in the same run",
                           description="Time the project against what a user would otherwise write.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT")
    for add in (add_bench_data, add_bench_prepare, add_bench_train):
        add(bench_sub)
    bench.set_defaults(func=lambda args: (bench.print_help(), 2)[1])


def _progress(args: argparse.Namespace):
    """Where a benchmark's progress lines go: stdout, or stderr under --json (stdout holds the one JSON
    object), so that a run cut short still shows the figures it had taken."""
    return functools.partial(print, file=sys.stderr, flush=True) if args.json else print


def _finish(args: argparse.Namespace, result: dict, title: str, line: str, keys: list[str], device=None) -> int:
    """Print the JSON object if asked, and append the record line to --record FILE."""
    if args.json:
        print(json.dumps({k: result[k] for k in keys} if keys else result))
    if args.record:
        from ..bench.record import append_record

        append_record(args.record, title, line, device)
    return 0


def add_bench_data(sub) -> None:
    p = sub.add_parser("data", help="training input pipeline: images per second vs JPEG + PIL + DataLoader",
                       description="Images per second of the training input pipeline (crops, flips, colour "
                                   "noise, mean image) against a reference reading the same images as JPEG "
                                   "files with PIL in a DataLoader with the same worker count.")
    p.add_argument("--data", required=True, nargs="+", metavar="DATA",
                   help="prepared dataset(s), each timed in the same run (e.g. raw and JPEG storage)")
    p.add_argument("--workers", type=whole(0, 1024), default=None,
                   help="loader processes for ours and the reference (default: train's; on CUDA the usable cores "
                        "less two, at most 16; none on the CPU)")
    p.add_argument("--batch-size", type=whole(1, MAX_BATCH), default=128, help="images per batch (default 128)")
    p.add_argument("--images", type=positive_int, default=None,
                   help="training images to read (default: enough for a sustained rate, 10 batches a worker and at "
                        "least 4096, as far as the data holds them)")
    add_device(p, default="cpu")
    p.add_argument("--train-preset", default=None, choices=list(PRESETS),
                   help="also time the loader feeding training steps of this network, end to end")
    p.add_argument("--train-batches", type=positive_int, default=400,
                   help="timed batches for the end-to-end figure (default 400)")
    p.add_argument("--pipelines", nargs="+", default=["host"], choices=list(PIPELINES), metavar="PIPELINE",
                   help=f"input pipelines to time, as `train --pipeline` ({', '.join(PIPELINES)}; default host)")
    p.add_argument("--no-ahead", dest="ahead", action="store_false",
                   help="on CUDA, prepare each batch in the training thread and on its stream, where train prepares "
                        "the next batches ahead in a thread and on a side stream (to compare the two)")
    add_output_flags(p)
    p.set_defaults(func=run_bench_data)


def run_bench_data(args: argparse.Namespace) -> int:
    from ..bench.data import bench_data, record_line

    result = bench_data(args.data, workers=args.workers, batch_size=args.batch_size, images=args.images,
                        device=args.device, train_preset=args.train_preset, timed_batches=args.train_batches,
                        pipelines=args.pipelines, ahead=args.ahead, log=_progress(args))
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    keys = ["images_per_second", "baseline_images_per_second", "workers", "runs"]
    keys += ["train_images_per_second", "imagenet_epoch_seconds", "end_to_end"] if args.train_preset else []
    return _finish(args, result, "input pipeline", record_line(result), keys)


def add_bench_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="JPEG preparation: reduced-scale decode vs full decode + resize",
                       description="Images per second of preparing ImageNet-sized JPEGs (500x375 and "
                                   "1600x1200) into the stored square, against a full decode + resize.")
    p.add_argument("--images", type=whole(1, 100_000), default=40, help="JPEGs per size (default 40)")
    p.add_argument("--size", type=whole(1, 4096), default=256, help="stored side (default 256)")
    add_output_flags(p)
    p.set_defaults(func=run_bench_prepare)


def run_bench_prepare(args: argparse.Namespace) -> int:
    from ..bench.prepare import bench_prepare, record_line

    result = bench_prepare(args.images, args.size, log=_progress(args))
    return _finish(args, result, "preparing JPEGs, one process", record_line(result), [])


def add_bench_train(sub) -> None:
    p = sub.add_parser("train", help="training images per second vs eager fp32 + torch.optim.SGD",
                       description="Training images per second of the step `alexnet train` runs (its optimizer "
                                   "groups, its fast path) against a plain reference (same architecture, eager "
                                   "fp32, NCHW, torch.optim.SGD) on synthetic batches, with model FLOP "
                                   "utilisation.")
    p.add_argument("--preset", default="paper", choices=list(PRESETS), help="network (default paper)")
    add_device(p)
    p.add_argument("--batch-size", type=whole(1, MAX_BATCH), default=128, help="images per step (default 128)")
    p.add_argument("--steps", type=positive_int, default=None, help="timed steps (default 30 on cuda, 3 on cpu)")
    add_speed_flags(p)
    add_output_flags(p)
    p.set_defaults(func=run_bench_train)


def run_bench_train(args: argparse.Namespace) -> int:
    from ..bench.train import bench_train, record_line
    from ..device import resolve_device
    from ..training.step import resolve_speed

    device = resolve_device(args.device)
    speed = resolve_speed(device, args.precision, args.channels_last, args.compile)
    result = bench_train(args.preset, str(device), args.batch_size, args.steps, speed=speed,
                         log=_progress(args))
    keys = ["images_per_second", "baseline_images_per_second", "device", "batch_size"]
    return _finish(args, result, f"training step, preset {result['preset']}", record_line(result), keys, device)
