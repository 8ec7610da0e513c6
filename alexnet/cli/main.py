"""`alexnet SUBCOMMAND ...`: one small function per subcommand, one parser that lists them all.

User errors (AlexNetError) print one line `alexnet: error: ...` and exit with status 1; bad flags
exit with status 2 (argparse's convention); Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import __version__
from ..errors import AlexNetError
from ..ablations import ABLATIONS
from ..data.sources import LAYOUTS
from ..presets import PRESETS, get_preset


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum, with a message naming the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)


# --- subcommands -------------------------------------------------------------------------------------

def cmd_summary(args: argparse.Namespace) -> int:
    import torch

    from .. import build_model
    from ..model.summary import format_summary, summarize

    preset = PRESETS[args.preset]
    size = args.input_size or preset.model.input_size
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = build_model(args.preset, num_classes=args.num_classes, input_size=size)
    except ValueError as exc:
        raise AlexNetError(f"--input-size {size}: {exc}") from None
    print(f"preset {preset.name}: {preset.description}")
    print(format_summary(summarize(model, size), size))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    if args.verify:
        from ..data.prepared import verify_dataset

        if args.out is not None:
            raise AlexNetError("--verify takes one folder: alexnet prepare --verify OUT")
        print(verify_dataset(args.src, progress=_show_progress(args)))
        return 0
    if args.out is None:
        raise AlexNetError("prepare needs SRC and OUT (or --verify OUT)")
    from ..data.prepare import prepare_dataset

    manifest = prepare_dataset(args.src, args.out, size=args.size, workers=args.workers,
                               progress=_show_progress(args), layout=args.layout, val_labels=args.val_labels,
                               skip_bad=args.skip_bad)
    counts = ", ".join(f"{info['count']} {split}" for split, info in manifest["splits"].items())
    skipped = sum(len(info["skipped"]) for info in manifest["splits"].values())
    print(f"prepared {args.out} ({manifest['layout']}): {counts} images, {manifest['num_classes']} classes, "
          f"{manifest['size']}x{manifest['size']}" + (f"; {skipped} unreadable left out" if skipped else ""))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from ..presets import preset_to_dict

    if args.config_command == "show":
        print(json.dumps(preset_to_dict(get_preset(args.name)), indent=2))
    else:
        for name, preset in PRESETS.items():
            print(f"{name:20s} {preset.description}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.trainer import TrainSettings, train

    if args.config and args.preset:
        raise AlexNetError("give --preset or --config, not both")

    result = train(TrainSettings(
        data=Path(args.data), out=Path(args.out), preset=args.preset or "paper", config=args.config,
        epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, resume=args.resume,
        workers=args.workers, time_limit=args.time_limit, precision=args.precision,
        channels_last=args.channels_last, compile=args.compile, init_from=args.init_from,
        ablations=tuple(args.ablate), checkpoint_every=args.checkpoint_every,
        skip_bad_batches=args.skip_bad_batches, auto_resume=args.auto_resume, tensorboard=args.tensorboard,
        progress=_show_progress(args)))
    print(f"done: {result['stopped_because']}; last epoch {result['epoch']}: val top-1 error "
          f"{result['val_top1_error']:.2%}, top-5 error {result['val_top5_error']:.2%}. "
          f"Weights: {Path(args.out) / 'last.pt'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate_checkpoints

    modes = ["center", "10crop"] if args.tta == "both" else [args.tta]
    results = {tta: evaluate_checkpoints(args.run, data=args.data, tta=tta, device=args.device,
                                         batch_size=args.batch_size, workers=args.workers,
                                         progress=_show_progress(args) and not args.json, split=args.split)
               for tta in modes}
    keys = ("top1_error", "top5_error", "images")
    if args.json:
        print(json.dumps({tta: {k: r[k] for k in keys} for tta, r in results.items()} if args.tta == "both"
                         else {k: results[args.tta][k] for k in keys}))
        return 0
    for tta, result in results.items():
        what = result["checkpoint"] if result["networks"] == 1 else f"{result['networks']} networks averaged"
        print(f"{what} on {result['data']} ({args.split}, {result['images']} images, {tta}): "
              f"top-1 error {result['top1_error']:.2%}, top-5 error {result['top5_error']:.2%}")
    if args.tta == "both":  # the paper's footnote 5 gives both; the gap is what ten patches buy
        c, t = results["center"], results["10crop"]
        print(f"ten patches vs centre patch: top-1 {(t['top1_error'] - c['top1_error']) * 100:+.1f} points, "
              f"top-5 {(t['top5_error'] - c['top5_error']) * 100:+.1f} points (the paper, ILSVRC-2010 test: "
              f"-1.5 and -1.3)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..evaluation.predict import predict_files

    for path, top in predict_files(args.run, args.images, tta=args.tta, device=args.device, k=args.top):
        if args.json:
            print(json.dumps({"image": path, "top": [{"class": c, "probability": p} for c, p in top]}))
        else:
            print(path)
            for name, prob in top:
                print(f"  {prob:7.2%}  {name}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from ..figures.make import make_figures

    result = make_figures(args.run, args.out, data=args.data, device=args.device, predictions=args.predictions,
                          queries=args.queries, neighbors=args.neighbors, pool=args.pool, seed=args.seed,
                          progress=_show_progress(args))
    print("wrote " + ", ".join(str(p) for p in result["files"].values()))
    return 0


def cmd_relu_tanh(args: argparse.Namespace) -> int:
    from ..experiments.relu_tanh import run_relu_tanh

    run_relu_tanh(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, target=args.target,
                  lr_relu=args.lr_relu, lr_tanh=args.lr_tanh, seed=args.seed, device=args.device,
                  run_all=args.all_epochs, progress=_show_progress(args))
    return 0


def cmd_retrieval(args: argparse.Namespace) -> int:
    from ..experiments.retrieval import run_retrieval

    result = run_retrieval(args.run, args.out, data=args.data, bits=args.bits, pool=args.pool, queries=args.queries,
                           epochs=args.epochs, seed=args.seed, device=args.device, progress=_show_progress(args))
    print(f"table: {result['file']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..figures.report import write_report

    write_report(args.run, args.out, data=args.data, device=args.device, include=args.include,
                 figures_dir=args.figures)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..export.export import export_run

    export_run(args.run, args.format, args.out)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from ..export.convert import convert_torchvision

    convert_torchvision(args.weights, args.out, data=args.data, classes_file=args.classes)
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from ..experiments.ablate import run_ablation

    variants = list(ABLATIONS) if args.variants == ["all"] else args.variants
    table = run_ablation(args.data, args.out, args.preset, variants, epochs=args.epochs, seed=args.seed,
                         device=args.device, progress=_show_progress(args))
    print(f"table: {table}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), epochs=args.epochs, seed=args.seed, progress=_show_progress(args))
    return 0


def cmd_bench_data(args: argparse.Namespace) -> int:
    from ..bench.data import bench_data

    log = (lambda line: None) if args.json else print
    result = bench_data(args.data, workers=args.workers, batch_size=args.batch_size, images=args.images,
                        device=args.device, train_preset=args.train_preset, timed_batches=args.train_batches,
                        log=log)
    if args.json:
        keys = ["images_per_second", "baseline_images_per_second", "workers"]
        keys += ["train_images_per_second", "imagenet_epoch_seconds"] if args.train_preset else []
        print(json.dumps({k: result[k] for k in keys}))
    if args.record:
        from ..bench.record import append_record

        append_record(args.record, "input pipeline",
                      f"{result['images_per_second']:.0f} images/s vs reference {result['baseline_images_per_second']:.0f} "
                      f"({result['speedup']:.1f}x), {result['workers']} workers, batch {result['batch_size']}, "
                      f"{result['size']} px stored, crops {result['crop']}, float work on {result['device']}"
                      + (f"; end to end with {result['train_preset']} training: "
                         f"{result['train_images_per_second']:.0f} images/s, "
                         f"{result['imagenet_epoch_seconds']:.0f} s per ILSVRC-2012 epoch"
                         if args.train_preset else ""))
    return 0


def cmd_bench_prepare(args: argparse.Namespace) -> int:
    from ..bench.prepare import bench_prepare

    result = bench_prepare(args.images, args.size, log=(lambda line: None) if args.json else print)
    if args.json:
        print(json.dumps(result))
    if args.record:
        from ..bench.record import append_record

        append_record(args.record, "preparing JPEGs, one process", "; ".join(
            f"{k}: {v['images_per_second']:.1f} vs full decode {v['baseline_images_per_second']:.1f} images/s "
            f"({v['ratio']:.2f}x)" for k, v in result.items()))
    return 0


def cmd_bench_train(args: argparse.Namespace) -> int:
    from ..bench.train import bench_train
    from ..device import resolve_device
    from ..training.speed import resolve_speed

    device = resolve_device(args.device)
    speed = resolve_speed(device, args.precision, args.channels_last, args.compile)
    result = bench_train(args.preset, str(device), args.batch_size, args.steps, speed=speed,
                         log=(lambda line: None) if args.json else print)
    if args.json:
        print(json.dumps({k: result[k] for k in ("images_per_second", "baseline_images_per_second", "device",
                                                 "batch_size")}))
    if args.record:
        from ..bench.record import append_record

        mfu = f", MFU {result['mfu']:.1%}" if result["mfu"] is not None else ""
        append_record(args.record, f"training step, preset {result['preset']}",
                      f"{result['images_per_second']:.0f} images/s vs reference {result['baseline_images_per_second']:.0f} "
                      f"({result['speedup']:.2f}x), batch {result['batch_size']}, {speed.describe()}, "
                      f"{result['tflops']:.2f} TFLOP/s{mfu}", device)
    return 0


def _add_speed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"],
                   help="training arithmetic (default: bf16 on CUDA, fp16 where bf16 is missing; fp32 on CPU)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory layout (default: on for CUDA, off on CPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (default: on for CUDA, off on CPU)")


# --- parser ------------------------------------------------------------------------------------------

def _add_run_inputs(p: argparse.ArgumentParser, out_help: str, out_metavar: str = "DIR") -> None:
    """RUN, --out and --data: the arguments of every command that reads a trained run."""
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder or checkpoint file")
    p.add_argument("--out", required=True, metavar=out_metavar, help=out_help)
    p.add_argument("--data", default=None, metavar="OUT", help="prepared dataset (default: the run's)")


def _add_seed_device_quiet(p: argparse.ArgumentParser, seed_help: str) -> None:
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alexnet",
        description="AlexNet (Krizhevsky, Sutskever & Hinton, 2012): prepare data, train, evaluate.",
        epilog="Run `alexnet SUBCOMMAND --help` for each subcommand's options.")
    parser.add_argument("--version", action="version", version=f"alexnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    preset_help = "; ".join(f"{p.name}" for p in PRESETS.values())

    p = sub.add_parser("summary", help="per-layer shapes, neurons and parameters of a preset",
                       description="Print each layer's output shape, neuron count and parameter count, and the total.")
    p.add_argument("--preset", default="paper", choices=list(PRESETS), help=f"network preset ({preset_help})")
    p.add_argument("--num-classes", type=_positive_int, default=1000, help="output classes (default 1000)")
    p.add_argument("--input-size", type=_positive_int, default=None,
                   help="crop side in pixels (default: the preset's, 224 for paper)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("prepare", help="rescale a dataset (image folders, ILSVRC, CIFAR-10) into a prepared dataset",
                       description="Read SRC (an image-folder tree SRC/train|val/<class>/*, ILSVRC-2012/2010 tars "
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
    p.add_argument("--skip-bad", action="store_true",
                   help="leave unreadable images out (listed under 'skipped' in manifest.json) instead of stopping")
    p.add_argument("--verify", action="store_true",
                   help="check a prepared dataset: files, shapes, counts, labels and checksums")
    p.add_argument("--size", type=_positive_int, default=256,
                   help="stored image side in pixels (default 256; use 32 for CIFAR-10's native size)")
    p.add_argument("--workers", type=_nonnegative_int, default=None,
                   help="decoding processes (default: CPU count, at most 8; 0 = in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a preset on a prepared dataset",
                       description="Train with the preset's recipe; writes RUN/metrics.csv, RUN/last.pt "
                                   "and RUN/config.json each epoch.")
    p.add_argument("--data", required=True, metavar="OUT", help="prepared dataset folder")
    p.add_argument("--preset", default=None, choices=list(PRESETS), help=f"network and recipe ({preset_help})")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="network and recipe from a JSON file instead of a preset (`alexnet config show NAME` "
                        "prints one to edit; a run's config.json works too)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder for checkpoints and metrics")
    p.add_argument("--epochs", type=_positive_int, default=None, help="most epochs to train (default: the preset's)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="images per step (default: the preset's)")
    p.add_argument("--lr", type=_positive_float, default=None, help="initial learning rate (default: the preset's)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed for init, data order, augmentation, dropout")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its last.pt")
    p.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS",
                   help="start no epoch that would end after this many seconds of training (resume to go on)")
    _add_speed_flags(p)
    p.add_argument("--workers", type=_nonnegative_int, default=None,
                   help="data-loading processes (default: CPU count up to 8 on cuda, 0 = in-process on cpu)")
    p.add_argument("--ablate", action="append", default=[], choices=list(ABLATIONS), metavar="NAME",
                   help=f"remove one ingredient of the preset (repeatable): {', '.join(ABLATIONS)}")
    p.add_argument("--init-from", default=None, metavar="RUN_OR_CHECKPOINT",
                   help="start from another run's weights (fine-tuning); a different class count gets a new "
                        "output layer")
    p.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="STEPS",
                   help="also write last.pt every STEPS steps inside an epoch (resumable to the step)")
    p.add_argument("--skip-bad-batches", action="store_true",
                   help="skip (and count) a batch whose loss is not finite or explodes, instead of stopping")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log scalars, learning rate and the conv1 kernels to OUT/tensorboard")
    p.add_argument("--auto-resume", action="store_true",
                   help="resume when OUT/last.pt exists, else start (for restarts: torchrun --max-restarts, requeues)")
    p.add_argument("--quiet", action="store_true", help="no progress display (epoch lines still print)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="top-1/top-5 error of a run (or an ensemble) on a validation split",
                       description="Evaluate a run folder (its last.pt) or a checkpoint file; given several, "
                                   "average their softmax outputs (the paper's combination of CNNs).")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", nargs="+", help="run folder(s) or checkpoint file(s)")
    p.add_argument("--split", default="val", help="which split to test (val; test where the dataset has one)")
    p.add_argument("--data", default=None, metavar="OUT", help="prepared dataset (default: the run's)")
    p.add_argument("--tta", default="10crop", choices=["center", "10crop", "both"],
                   help="test patches: the centre only, the paper's ten, or both side by side (default 10crop)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="images per forward pass")
    p.add_argument("--workers", type=_nonnegative_int, default=0, help="data-loading processes")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("ablate", help="train the full network and its ablations, compare with the paper",
                       description="Train the preset and each chosen ablation with one recipe and write "
                                   "OUT/ablation.md: ten-patch top-1/top-5 error per variant, the difference "
                                   "from the full network, and the paper's reported difference.")
    p.add_argument("--data", required=True, metavar="DATA", help="prepared dataset")
    p.add_argument("--out", required=True, metavar="OUT", help="folder for the runs and the table")
    p.add_argument("--preset", default="paper", choices=list(PRESETS), help="network and recipe (default paper)")
    p.add_argument("--variants", nargs="+", default=["all"], metavar="NAME",
                   help=f"ablations to run (default all): {', '.join(ABLATIONS)}")
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs per run (default: the preset's)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="one seed for every run")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("predict", help="the most probable classes for image files",
                       description="Top-k class names and probabilities for any image files (any size or mode), "
                                   "preprocessed exactly as at test time.")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder or checkpoint file")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    p.add_argument("--tta", default="10crop", choices=["center", "10crop"], help="test patches (default 10crop)")
    p.add_argument("--top", type=_positive_int, default=5, help="how many classes to list (default 5)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="a run's network as safetensors, ONNX or TorchScript, with its preprocessing",
                       description="Write the network to --out in the chosen format, and beside it "
                                   "FILE.preprocessing.json (the steps a deployer must apply) and FILE.mean.npy "
                                   "(the training mean image).")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder or checkpoint file")
    p.add_argument("--format", required=True, choices=["safetensors", "onnx", "torchscript"], help="file format")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("convert", help="torchvision AlexNet weights as a run folder (evaluate, predict, fine-tune)",
                       description="Read a torchvision.models.alexnet weights file (read safely, weights only) and "
                                   "write OUT/last.pt for the `torchvision` preset, which `evaluate`, `predict`, "
                                   "`figures`, `export` and `train --init-from` take like a trained run.")
    p.add_argument("source", choices=["torchvision"], help="where the weights come from")
    p.add_argument("weights", metavar="WEIGHTS", help="the weights file (a state_dict, e.g. alexnet-owt-7be5be79.pth)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to create")
    p.add_argument("--data", default=None, metavar="DATA",
                   help="prepared dataset whose classes the outputs are (same count; e.g. prepared ILSVRC-2012)")
    p.add_argument("--classes", default=None, metavar="FILE", help="or: class names, one per line, in output order")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("config", help="the presets as JSON files: list them, show one to edit for train --config",
                       description="`alexnet config show NAME` prints a preset (network and recipe) as JSON; "
                                   "edit a copy and train from it with `alexnet train --config FILE`.")
    config_sub = p.add_subparsers(dest="config_command", metavar="WHAT")
    config_sub.add_parser("list", help="the presets, one line each")
    show = config_sub.add_parser("show", help="one preset as JSON")
    show.add_argument("name", choices=list(PRESETS), help="preset")
    p.set_defaults(func=cmd_config, config_command="list")

    p = sub.add_parser("figures", help="the paper's pictures for a run: kernels, predictions, neighbours, curves",
                       description="Write kernels.png (Figure 3: conv1 kernels per column, with their colour "
                                   "specificity), predictions.png (Figure 4 left: top-5 labels of validation "
                                   "images), neighbors.png (Figure 4 right: training images nearest in the last "
                                   "hidden layer) and curves.png (learning curves) into --out.")
    _add_run_inputs(p, "folder for the PNG files")
    p.add_argument("--predictions", type=_positive_int, default=8, help="validation images shown (default 8)")
    p.add_argument("--queries", type=_positive_int, default=5, help="query images for neighbours (default 5)")
    p.add_argument("--neighbors", type=_positive_int, default=6, help="neighbours per query (default 6, as Figure 4)")
    p.add_argument("--pool", type=_positive_int, default=10000,
                   help="training images searched for neighbours (default 10000; features are 4096-d each)")
    _add_seed_device_quiet(p, "which images are drawn (default 0)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("relu-tanh", help="Figure 1: the four-layer net with ReLU and with tanh, epochs to 25%% error",
                       description="Train the four-layer CIFAR-10 net of Figure 1 with ReLU and with tanh units "
                                   "(same initial weights and batches, no regularisation) and report the epochs "
                                   "each needs to reach the target training error, their ratio (the paper: about "
                                   "6x) and the curves (relu_tanh.png, .csv, .md in --out).")
    p.add_argument("--data", required=True, metavar="OUT", help="prepared dataset stored at <= 64 px (CIFAR-10: 32)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    p.add_argument("--epochs", type=_positive_int, default=40, help="most epochs per net (default 40)")
    p.add_argument("--batch-size", type=_positive_int, default=128, help="images per step (default 128)")
    p.add_argument("--target", type=float, default=0.25, help="training error to reach (default 0.25)")
    p.add_argument("--lr-relu", type=float, default=None, help="learning rate of the ReLU net (default 0.003)")
    p.add_argument("--lr-tanh", type=float, default=None, help="learning rate of the tanh net (default 0.03)")
    p.add_argument("--all-epochs", action="store_true", help="train every epoch, not only until the target")
    _add_seed_device_quiet(p, "initial weights and batch order (default 0)")
    p.set_defaults(func=cmd_relu_tanh)

    p = sub.add_parser("retrieval", help="Section 6.1: binary codes of the last hidden layer, Hamming search",
                       description="Compress a run's last-hidden-layer features of training images to short "
                                   "binary codes with an auto-encoder, answer validation queries by Hamming "
                                   "distance, and compare with exact Euclidean search: recall@k, same-class "
                                   "precision, time per query, memory (retrieval.md in --out).")
    _add_run_inputs(p, "folder for retrieval.md")
    p.add_argument("--bits", type=_positive_int, default=64, help="code length in bits (default 64)")
    p.add_argument("--pool", type=_positive_int, default=10000, help="training images searched (default 10000)")
    p.add_argument("--queries", type=_positive_int, default=500, help="validation queries (default 500)")
    p.add_argument("--epochs", type=_positive_int, default=30, help="auto-encoder epochs (default 30)")
    _add_seed_device_quiet(p, "which images, and the auto-encoder's init (default 0)")
    p.set_defaults(func=cmd_retrieval)

    p = sub.add_parser("report", help="one self-contained HTML page: configuration, curves, errors vs the paper, figures",
                       description="Write a self-contained HTML page (pictures embedded) with the run's "
                                   "configuration, learning curves, centre and ten-patch error beside the "
                                   "paper's, Figures 3 and 4, and any experiment tables given with --include.")
    _add_run_inputs(p, "the page to write", "FILE.html")
    p.add_argument("--include", nargs="*", default=[], metavar="FILE.md",
                   help="result tables to add (ablation.md, relu_tanh.md, retrieval.md)")
    p.add_argument("--figures", default=None, metavar="DIR", help="also keep the PNG files in DIR")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="generate a small dataset, train the small preset, evaluate it",
                       description="The whole system in a few minutes on a laptop CPU: generate a ten-class "
                                   "image-folder dataset, prepare it, train the small preset, and evaluate "
                                   "it with ten-patch testing.")
    p.add_argument("--out", default="alexnet-demo", metavar="DIR", help="working folder (default ./alexnet-demo)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="training epochs (default: the demo's)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed for the data and the run")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_demo)
    bench = sub.add_parser("bench", help="benchmarks against a plain reference, in the same run",
                           description="Time the project against what a user would otherwise write.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT")
    p = bench_sub.add_parser("data", help="training input pipeline: images per second vs JPEG + PIL + DataLoader",
                             description="Images per second of the training input pipeline (crops, flips, colour "
                                         "noise, mean image) against a reference reading the same images as JPEG "
                                         "files with PIL in a DataLoader with the same worker count.")
    p.add_argument("--data", required=True, metavar="OUT", help="prepared dataset")
    p.add_argument("--workers", type=_nonnegative_int, default=2, help="loader processes for both (default 2)")
    p.add_argument("--batch-size", type=_positive_int, default=128, help="images per batch (default 128)")
    p.add_argument("--images", type=_positive_int, default=4096, help="training images to read (default 4096)")
    p.add_argument("--device", default="cpu", help="where the float work happens (default cpu)")
    p.add_argument("--train-preset", default=None, choices=list(PRESETS),
                   help="also time the loader feeding training steps of this network, end to end")
    p.add_argument("--train-batches", type=_positive_int, default=400,
                   help="timed batches for the end-to-end figure (default 400)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--record", default=None, metavar="FILE", help="append the result to FILE (e.g. BENCHMARKS.md)")
    p.set_defaults(func=cmd_bench_data)
    p = bench_sub.add_parser("prepare", help="JPEG preparation: reduced-scale decode vs full decode + resize",
                             description="Images per second of preparing ImageNet-sized JPEGs (500x375 and "
                                         "1600x1200) into the stored square, against a full decode + resize.")
    p.add_argument("--images", type=_positive_int, default=40, help="JPEGs per size (default 40)")
    p.add_argument("--size", type=_positive_int, default=256, help="stored side (default 256)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--record", default=None, metavar="FILE", help="append the result to FILE (e.g. BENCHMARKS.md)")
    p.set_defaults(func=cmd_bench_prepare)
    p = bench_sub.add_parser("train", help="training images per second vs eager fp32 + torch.optim.SGD",
                             description="Training images per second of the fast path against a plain reference "
                                         "(same architecture, eager fp32, NCHW, torch.optim.SGD) on synthetic "
                                         "batches, with model FLOP utilisation.")
    p.add_argument("--preset", default="paper", choices=list(PRESETS), help="network (default paper)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=_positive_int, default=128, help="images per step (default 128)")
    p.add_argument("--steps", type=_positive_int, default=None, help="timed steps (default 30 on cuda, 3 on cpu)")
    _add_speed_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--record", default=None, metavar="FILE", help="append the result to FILE (e.g. BENCHMARKS.md)")
    p.set_defaults(func=cmd_bench_train)
    bench.set_defaults(func=lambda args: (bench.print_help(), 2)[1])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # log lines appear as they happen, also in a piped log file
        sys.stdout.reconfigure(line_buffering=True)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except AlexNetError as exc:
        code = getattr(exc, "exit_code", 1)  # 75: training interrupted on request, checkpoint written
        print(f"alexnet: {'stopped' if code != 1 else 'error'}: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("alexnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
