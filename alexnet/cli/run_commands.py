"""Commands that read a trained run: evaluate, predict, figures, retrieval, report, export, convert."""

from __future__ import annotations

import argparse
import functools
import json
import sys

from ..config import MAX_EPOCHS
from .arguments import (add_device, add_force, add_quiet, add_run_inputs, add_seed, positive_int, show_progress,
                        whole)


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="top-1/top-5 error of a run (or an ensemble) on a validation split",
                       description="Evaluate a run folder (its last.pt) or a checkpoint file; given several, "
                                   "average their softmax outputs (the paper's combination of CNNs).")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", nargs="+", help="run folder(s) or checkpoint file(s)")
    p.add_argument("--split", default="val", help="which split to test (val; test where the dataset has one)")
    p.add_argument("--data", default=None, metavar="DATA", help="prepared dataset (default: the run's)")
    p.add_argument("--tta", default="10crop", choices=["center", "10crop", "both"],
                   help="test patches: the centre only, the paper's ten, or both side by side (default 10crop)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device(p)
    p.add_argument("--batch-size", type=int, default=None,  # range-checked by evaluate_checkpoints
                   help="images per forward pass")
    p.add_argument("--workers", type=whole(0, 1024), default=None,
                   help="data-loading processes (default: as train, the usable cores less two on a GPU, 0 on the CPU)")
    add_quiet(p)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate_checkpoints

    modes = ["center", "10crop"] if args.tta == "both" else [args.tta]
    results = {tta: evaluate_checkpoints(args.run, data=args.data, tta=tta, device=args.device,
                                         batch_size=args.batch_size, workers=args.workers,
                                         progress=show_progress(args) and not args.json, split=args.split)
               for tta in modes}
    keys = ("top1_error", "top5_error", "images")
    for path, data in results[modes[0]]["trained_elsewhere"].items():
        print(f"note: {path} was trained on another prepared dataset ({data}): unless its training images are "
              f"kept apart from this {args.split} split, its error is optimistic", file=sys.stderr)
    for path, earlier in results[modes[0]]["repeated"].items():
        same = "is given more than once" if path == earlier else f"is the same network as {earlier}"
        print(f"note: {path} {same}: it counts more than once in the average", file=sys.stderr)
    if args.json:  # rounded: 1 - 0.9 is 0.09999999999999998 in floating point
        rounded = {tta: {k: round(r[k], 10) for k in keys} for tta, r in results.items()}
        print(json.dumps(rounded if args.tta == "both" else rounded[args.tta]))
        return 0
    for tta, result in results.items():
        what = result["checkpoint"] if result["networks"] == 1 else f"{result['networks']} networks averaged"
        few = result.get("classes", 6) <= 5
        print(f"{what} on {result['data']} ({args.split}, {result['images']} images, {tta}): "
              f"top-1 error {result['top1_error']:.2%}, top-5 error {result['top5_error']:.2%}"
              + (f" (with {result['classes']} classes every label is in the top 5)" if few else ""))
    if args.tta == "both":  # the paper's footnote 5 gives both; the gap is what ten patches buy
        c, t = results["center"], results["10crop"]
        print(f"ten patches vs centre patch: top-1 {(t['top1_error'] - c['top1_error']) * 100:+.1f} points, "
              f"top-5 {(t['top5_error'] - c['top5_error']) * 100:+.1f} points (the paper, ILSVRC-2010 test: "
              f"-1.5 and -1.3)")
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="the most probable classes for image files or folders of them",
                       description="Top-k class names and probabilities for any image files (any size or mode), "
                                   "preprocessed exactly as at test time. A folder stands for every image in "
                                   "it and its sub-folders.")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder or checkpoint file")
    p.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+", help="image files, or folders of them")
    p.add_argument("--tta", default="10crop", choices=["center", "10crop"], help="test patches (default 10crop)")
    p.add_argument("--top", type=whole(1, 1000), default=5, help="how many classes to list (default 5)")
    add_device(p)
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from ..evaluation.predict import predict_files

    notes = functools.partial(print, file=sys.stderr)   # stdout stays the predictions alone (--json)
    for path, top in predict_files(args.run, args.images, tta=args.tta, device=args.device, k=args.top, log=notes):
        if args.json:
            print(json.dumps({"image": path, "top": [{"class": c, "probability": p} for c, p in top]}))
        else:
            print(path)
            for name, prob in top:
                print(f"  {prob:7.2%}  {name}")
    return 0


def add_figures(sub) -> None:
    p = sub.add_parser("figures", help="the paper's pictures for a run: kernels, predictions, neighbours, curves",
                       description="Write kernels.png (Figure 3: conv1 kernels per column, with their colour "
                                   "specificity), predictions.png (Figure 4 left: top-5 labels of validation "
                                   "images), neighbors.png (Figure 4 right: training images nearest in the last "
                                   "hidden layer) and curves.png (learning curves) into --out.")
    add_run_inputs(p, "folder for the PNG files")
    p.add_argument("--predictions", type=whole(1, 1000), default=8, help="validation images shown (default 8)")
    p.add_argument("--queries", type=whole(1, 1000), default=5, help="query images for neighbours (default 5)")
    p.add_argument("--neighbors", type=whole(1, 1000), default=6, help="neighbours per query (default 6, as Figure 4)")
    p.add_argument("--pool", type=positive_int, default=10000,
                   help="training images searched for neighbours (default 10000; features are 4096-d each)")
    add_seed(p, "which images are drawn (default 0)")
    add_force(p, "files of the pictures' names")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_figures)


def run_figures(args: argparse.Namespace) -> int:
    from ..figures.make import make_figures

    result = make_figures(args.run, args.out, data=args.data, device=args.device, predictions=args.predictions,
                          queries=args.queries, neighbors=args.neighbors, pool=args.pool, seed=args.seed,
                          progress=show_progress(args), force=args.force)
    print("wrote " + ", ".join(str(p) for p in result["files"].values()))
    return 0


def add_retrieval(sub) -> None:
    p = sub.add_parser("retrieval", help="Section 6.1: binary codes of the last hidden layer, Hamming search",
                       description="Compress a run's last-hidden-layer features of training images to short "
                                   "binary codes with an auto-encoder, answer validation queries by Hamming "
                                   "distance, and compare with exact Euclidean search: recall@k, same-class "
                                   "precision, time per query, memory (retrieval.md in --out).")
    add_run_inputs(p, "folder for retrieval.md")
    add_force(p, "a retrieval.md")
    p.add_argument("--bits", type=whole(1, 4096), default=64, help="code length in bits (default 64)")
    p.add_argument("--pool", type=positive_int, default=10000, help="training images searched (default 10000)")
    p.add_argument("--queries", type=positive_int, default=500, help="validation queries (default 500)")
    p.add_argument("--epochs", type=whole(1, MAX_EPOCHS), default=30, help="auto-encoder epochs (default 30)")
    add_seed(p, "which images, and the auto-encoder's init (default 0)")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_retrieval)


def run_retrieval(args: argparse.Namespace) -> int:
    from ..experiments.retrieval import run_retrieval as retrieval

    result = retrieval(args.run, args.out, data=args.data, bits=args.bits, pool=args.pool, queries=args.queries,
                       epochs=args.epochs, seed=args.seed, device=args.device, progress=show_progress(args),
                       force=args.force)
    print(f"table: {result['file']}")
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page: configuration, curves, errors vs the paper, figures",
                       description="Write a self-contained HTML page (pictures embedded) with the run's "
                                   "configuration, learning curves, centre and ten-patch error beside the "
                                   "paper's, Figures 3 and 4, and any experiment tables given with --include.")
    add_run_inputs(p, "the page to write", "FILE.html")
    p.add_argument("--include", nargs="*", default=[], metavar="FILE.md",
                   help="result tables to add (ablation.md, relu_tanh.md, retrieval.md)")
    p.add_argument("--figures", default=None, metavar="DIR", help="also keep the PNG files in DIR")
    p.add_argument("--force", action="store_true",
                   help="replace a file at --out (or pictures in --figures) that is not ours (ours are replaced "
                        "anyway)")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from ..figures.report import write_report

    write_report(args.run, args.out, data=args.data, device=args.device, include=args.include,
                 figures_dir=args.figures, progress=show_progress(args), force=args.force)
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="a run's network as safetensors, ONNX or TorchScript, with its preprocessing",
                       description="Write the network to --out in the chosen format, and beside it "
                                   "FILE.preprocessing.json (the steps a deployer must apply) and FILE.mean.npy "
                                   "(the training mean image).")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder or checkpoint file")
    p.add_argument("--format", required=True, choices=["safetensors", "onnx", "torchscript"], help="file format")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--force", action="store_true", help="replace files of these names that are already there")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ..export.export import export_run

    export_run(args.run, args.format, args.out, force=args.force)
    return 0


def add_convert(sub) -> None:
    p = sub.add_parser("convert", help="torchvision AlexNet weights as a run folder (evaluate, predict, fine-tune)",
                       description="Read a torchvision.models.alexnet weights file (read safely, weights only) and "
                                   "write RUN/last.pt (--out RUN) for the `torchvision` preset, which `evaluate`, `predict`, "
                                   "`figures`, `export` and `train --init-from` take like a trained run.")
    p.add_argument("source", choices=["torchvision"], help="where the weights come from")
    p.add_argument("weights", metavar="WEIGHTS", help="the weights file (a state_dict, e.g. alexnet-owt-7be5be79.pth)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to create")
    p.add_argument("--data", default=None, metavar="DATA",
                   help="prepared dataset whose classes the outputs are (same count; e.g. prepared ILSVRC-2012)")
    p.add_argument("--classes", default=None, metavar="FILE", help="or: class names, one per line, in output order")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from ..export.convert import convert_torchvision

    convert_torchvision(args.weights, args.out, data=args.data, classes_file=args.classes)
    return 0
