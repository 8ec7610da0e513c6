"""Commands that train: train, ablate, relu-tanh."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ablations import ABLATIONS
from ..config import MAX_BATCH, MAX_EPOCHS, MAX_SEED, TrainConfig, add_flags, config_from_args
from ..interrupt import EXIT_INTERRUPTED
from ..presets import PRESETS
from .arguments import add_device, add_force, add_quiet, add_seed, real, show_progress, whole


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a preset on a prepared dataset",
                       description="Train with the preset's recipe; writes RUN/metrics.csv, RUN/last.pt "
                                   "and RUN/config.json each epoch.")
    add_flags(p, TrainConfig, {"presets": tuple(PRESETS), "ablations": tuple(ABLATIONS)})  # declared in config.py
    add_quiet(p, " (epoch lines still print)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from ..training.loop import command_again, train

    result = train(config_from_args(TrainConfig, args, progress=show_progress(args)))
    finished = not result.get("resumable")
    if not result["main_process"]:  # under torchrun, rank 0 alone reports; every rank exits alike
        return 0 if finished else EXIT_INTERRUPTED
    print(f"{'done' if finished else 'stopped'}: {result['stopped_because']}; last epoch {result['epoch']}: val top-1 "
          f"error {result['val_top1_error']:.2%}, top-5 error {result['val_top5_error']:.2%}. "
          f"Weights: {Path(args.out) / 'last.pt'}")
    if finished:
        return 0
    print(f"alexnet: stopped: the run can go on; resume with: alexnet {command_again()} --resume", file=sys.stderr)
    return EXIT_INTERRUPTED  # stopped and resumable, as after SIGTERM: a job script requeues on 75


def add_ablate(sub) -> None:
    p = sub.add_parser("ablate", help="train the full network and its ablations, compare with the paper",
                       description="Train the preset and each chosen ablation with one recipe (and each seed) "
                                   "and write OUT/ablation.md: ten-patch top-1/top-5 error per variant (mean, "
                                   "spread over seeds), the difference from the full network, and the paper's "
                                   "reported difference; OUT/ablation.png (and .svg) shows every seed's error.")
    p.add_argument("--data", required=True, metavar="DATA", help="prepared dataset")
    p.add_argument("--out", required=True, metavar="OUT", help="folder for the runs and the table")
    p.add_argument("--preset", default="paper", choices=list(PRESETS), help="network and recipe (default paper)")
    p.add_argument("--variants", nargs="+", default=["all"], metavar="NAME",
                   help=f"ablations to run (default all): {', '.join(ABLATIONS)}")
    p.add_argument("--epochs", type=whole(1, MAX_EPOCHS), default=None, help="epochs per run (default: the preset's)")
    p.add_argument("--seeds", nargs="+", type=whole(0, MAX_SEED), default=[0], metavar="SEED",
                   help="train every variant once per seed, to show the noise beside the differences "
                        "(default: 0; e.g. --seeds 0 1 2)")
    add_force(p, "an ablation.md, .png or .svg")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_ablate)


def run_ablate(args: argparse.Namespace) -> int:
    from ..experiments.ablate import run_ablation

    variants = list(ABLATIONS) if args.variants == ["all"] else args.variants
    table = run_ablation(args.data, args.out, args.preset, variants, epochs=args.epochs, seeds=args.seeds,
                         device=args.device, progress=show_progress(args), force=args.force)
    print(f"table: {table}")
    return 0


def add_relu_tanh(sub) -> None:
    p = sub.add_parser("relu-tanh", help="Figure 1: the four-layer net with ReLU and with tanh, epochs to 25%% error",
                       description="Train the four-layer CIFAR-10 net of Figure 1 with ReLU and with tanh units "
                                   "(same initial weights and batches, no regularisation) and report the epochs "
                                   "each needs to reach the target training error, their ratio (the paper: about "
                                   "6x) and the curves (relu_tanh.png, .csv, .md in --out).")
    p.add_argument("--data", required=True, metavar="DATA", help="prepared dataset stored at <= 64 px (CIFAR-10: 32)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    p.add_argument("--epochs", type=whole(1, MAX_EPOCHS), default=40, help="most epochs per net (default 40)")
    p.add_argument("--batch-size", type=whole(1, MAX_BATCH), default=128, help="images per step (default 128)")
    p.add_argument("--target", type=real(0.0, 1.0, above=True), default=0.25, help="training error to reach (default 0.25)")
    p.add_argument("--lr-relu", type=real(0.0, 100.0, above=True), default=None, help="learning rate of the ReLU net (default 0.003)")
    p.add_argument("--lr-tanh", type=real(0.0, 100.0, above=True), default=None, help="learning rate of the tanh net (default 0.03)")
    p.add_argument("--all-epochs", action="store_true", help="train every epoch, not only until the target")
    add_seed(p, "initial weights and batch order (default 0)")
    add_force(p, "a relu_tanh.csv, .md, .png or .svg")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_relu_tanh)


def run_relu_tanh(args: argparse.Namespace) -> int:
    from ..experiments.relu_tanh import run_relu_tanh as relu_tanh

    relu_tanh(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, target=args.target,
              lr_relu=args.lr_relu, lr_tanh=args.lr_tanh, seed=args.seed, device=args.device,
              run_all=args.all_epochs, progress=show_progress(args), force=args.force)
    return 0
