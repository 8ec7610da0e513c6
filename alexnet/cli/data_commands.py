"""Commands about data and networks before training: summary, config, prepare, demo."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import MAX_SIDE
from ..data.imagefolder import MAX_VAL_FRACTION
from ..data.manifest import MAX_SIZE
from ..data.sources import LAYOUTS
from ..errors import AlexNetError
from ..presets import PRESETS, get_preset
from .arguments import add_quiet, add_seed, positive_int, real, show_progress, whole


def add_summary(sub) -> None:
    p = sub.add_parser("summary", help="per-layer shapes, neurons and parameters of a preset",
                       description="Print each layer's output shape, neuron count and parameter count, and the total.")
    p.add_argument("--preset", default="paper", choices=list(PRESETS), help=f"network preset ({'; '.join(PRESETS)})")
    p.add_argument("--num-classes", type=whole(1, 1_000_000), default=1000, help="output classes (default 1000)")
    p.add_argument("--input-size", type=whole(1, MAX_SIDE), default=None,
                   help="crop side in pixels (default: the preset's, 224 for paper)")
    p.set_defaults(func=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    import torch

    from ..model import build_model
    from ..model.summary import format_summary, summarize

    preset = PRESETS[args.preset]
    size = args.input_size or preset.model.input_size
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = build_model(args.preset, num_classes=args.num_classes, input_size=size)
    except (ValueError, RuntimeError) as exc:  # RuntimeError: shapes past what a tensor can hold
        raise AlexNetError(f"--input-size {size}: {str(exc).splitlines()[0]}") from None
    print(f"preset {preset.name}: {preset.description}")
    print(format_summary(summarize(model, size), size))
    return 0


def add_config(sub) -> None:
    p = sub.add_parser("config", help="the presets as JSON files: list them, show one to edit for train --config",
                       description="`alexnet config show NAME` prints a preset (network and recipe) as JSON; "
                                   "edit a copy and train from it with `alexnet train --config FILE`.")
    config_sub = p.add_subparsers(dest="config_command", metavar="WHAT")
    config_sub.add_parser("list", help="the presets, one line each",
                          description="List the presets, one line each: name and what it is.")
    show = config_sub.add_parser("show", help="one preset as JSON",
                                 description="Print one preset (network and recipe) as JSON, the format that "
                                             "`alexnet train --config FILE` reads.")
    show.add_argument("name", choices=list(PRESETS), help="preset")
    p.set_defaults(func=run_config, config_command="list")


def run_config(args: argparse.Namespace) -> int:
    from ..presets import preset_to_dict

    if args.config_command == "show":
        print(json.dumps(preset_to_dict(get_preset(args.name)), indent=2))
    else:
        for name, preset in PRESETS.items():
            print(f"{name:20s} {preset.description}")
    return 0


def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="rescale a dataset (image folders, ILSVRC, CIFAR-10) into a prepared dataset",
                       description="Read SRC (an image-folder tree SRC/train|val/<class>/*, or one class tree with "
                                   "--val-fraction, ILSVRC-2012/2010 tars "
                                   "or folders with their devkit or a labels CSV, or CIFAR-10's python batches), "
                                   "rescale each image's shorter side to --size, keep the central square, and "
                                   "write the arrays, the mean image and the RGB eigen-decomposition to OUT. "
                                   "Run the same command again to continue an interrupted preparation.")
    p.add_argument("src", metavar="SRC", help="source folder (or, with --verify, the prepared dataset)")
    p.add_argument("out", metavar="OUT", nargs="?", default=None, help="output folder for the prepared dataset")
    p.add_argument("--layout", default="auto", choices=list(LAYOUTS),
                   help="how SRC is organised (default: recognised from its contents)")
    p.add_argument("--val-labels", default=None, metavar="CSV",
                   help="ILSVRC: labels of flat validation images, rows 'image id,synset ...' "
                        "(default: LOC_val_solution.csv or the devkit's ground truth in SRC)")
    p.add_argument("--val-fraction", type=real(0.0, MAX_VAL_FRACTION, above=True), default=None, metavar="F",
                   help="image folders without a val/ split (SRC/<class>/* or SRC/train/<class>/* alone): hold "
                        "out this fraction of each class's images for validation, chosen by a hash of their "
                        "paths, the same split on every run (default: none; SRC must have val/)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave unreadable images out (listed under 'skipped' in manifest.json) instead of stopping")
    p.add_argument("--verify", action="store_true",
                   help="check a prepared dataset: files, shapes, counts, labels and checksums")
    p.add_argument("--size", type=whole(1, MAX_SIZE), default=256,
                   help="stored image side in pixels (default 256; use 32 for CIFAR-10's native size)")
    p.add_argument("--storage", default=None, choices=["jpeg", "raw"],
                   help="how the pixels are kept: JPEG (quality 90) packed in large shards with an index, or raw "
                        "uint8 arrays (default: jpeg from 128 px up, raw below)")
    p.add_argument("--workers", type=whole(0, 1024), default=None,
                   help="decoding processes (default: CPU count, at most 8; 0 = in this process)")
    add_quiet(p)
    p.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    if args.verify:
        from ..data.prepared import verify_dataset

        if args.out is not None:
            raise AlexNetError("--verify takes one folder: alexnet prepare --verify OUT")
        print(verify_dataset(args.src, progress=show_progress(args)))
        return 0
    if args.out is None:
        raise AlexNetError("prepare needs SRC and OUT (or --verify OUT)")
    from ..data.prepare import prepare_dataset

    manifest = prepare_dataset(args.src, args.out, size=args.size, workers=args.workers,
                               progress=show_progress(args), layout=args.layout, val_labels=args.val_labels,
                               skip_bad=args.skip_bad, storage=args.storage, val_fraction=args.val_fraction)
    counts = ", ".join(f"{info['count']} {split}" for split, info in manifest["splits"].items())
    skipped = sum(len(info["skipped"]) for info in manifest["splits"].values())
    held_out = f" (val held out: {args.val_fraction:g} of each class)" if args.val_fraction else ""
    print(f"prepared {args.out} ({manifest['layout']}): {counts} images{held_out}, {manifest['num_classes']} "
          f"classes, {manifest['size']}x{manifest['size']}, {manifest['storage']} storage"
          + (f"; {skipped} unreadable left out" if skipped else ""))
    return 0


def add_proxy(sub) -> None:
    p = sub.add_parser("proxy", help="generate an ImageNet-like proxy: up to 1000 classes of 256 px JPEGs",
                       description="Write an image-folder tree (OUT/train/<class>/*.jpg, OUT/val/<class>/*.jpg) "
                                   "of generated images whose class is shape x colour scheme x background "
                                   "texture (10 x 10 x 10), for trying the full-size presets without ImageNet. "
                                   "Prepare it with `alexnet prepare OUT DATA`.")
    p.add_argument("out", metavar="OUT", help="folder to create")
    p.add_argument("--classes", type=whole(1, 1000), default=1000, help="how many classes (default 1000, the most)")
    p.add_argument("--train-per-class", type=positive_int, default=100, help="training images per class (default 100)")
    p.add_argument("--val-per-class", type=positive_int, default=10, help="validation images per class (default 10)")
    p.add_argument("--size", type=whole(32, MAX_SIDE), default=256, help="image side in pixels (default 256)")
    p.add_argument("--workers", type=whole(0, 1024), default=None,
                   help="processes (default: CPU count, at most 16; 0 = in this process)")
    add_seed(p, "what every image looks like (default 0)")
    add_quiet(p)
    p.set_defaults(func=run_proxy)


def run_proxy(args: argparse.Namespace) -> int:
    from ..data.proxy import make_proxy_dataset

    out = make_proxy_dataset(args.out, args.classes, args.train_per_class, args.val_per_class, args.size,
                             args.seed, args.workers, progress=show_progress(args))
    print(f"wrote {out}: {args.classes} classes x ({args.train_per_class} train + {args.val_per_class} val) "
          f"{args.size}x{args.size} JPEGs; next: alexnet prepare {out} DATA")
    return 0


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="generate a small dataset, train the small preset, evaluate it",
                       description="The whole system in a few minutes on a laptop CPU: generate a ten-class "
                                   "image-folder dataset, prepare it, train the small preset, and evaluate "
                                   "it with ten-patch testing.")
    p.add_argument("--out", default="alexnet-demo", metavar="DIR", help="working folder (default ./alexnet-demo)")
    p.add_argument("--epochs", type=whole(1, 1000), default=None,
                   help="training epochs (default 8, the demo's; a guard starts no epoch after 15 minutes of training)")
    add_seed(p, "seed for the data and the run (default 0)")
    add_quiet(p)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from ..experiments.demo import run_demo as demo

    demo(Path(args.out), epochs=args.epochs, seed=args.seed, progress=show_progress(args))
    return 0
