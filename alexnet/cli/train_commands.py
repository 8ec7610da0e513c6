"""Commands that train: train, ablate, relu-tanh."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ablations import ABLATIONS
from ..errors import AlexNetError
from ..data.loader import PIPELINES
from ..presets import PRESETS
from .arguments import (add_device, add_quiet, add_seed, add_speed_flags, nonnegative_int, positive_int,
                        show_progress)


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a preset on a prepared dataset",
                       description="Train with the preset's recipe; writes RUN/metrics.csv, RUN/last.pt "
                                   "and RUN/config.json each epoch.")
    p.add_argument("--data", required=True, metavar="DATA", help="prepared dataset folder")
    p.add_argument("--preset", default=None, choices=list(PRESETS), help=f"network and recipe ({'; '.join(PRESETS)})")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="network and recipe from a JSON file instead of a preset (`alexnet config show NAME` "
                        "prints one to edit; a run's config.json works too)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder for checkpoints and metrics")
    # Plain types: the ranges are checked once, by TrainSettings.
    p.add_argument("--epochs", type=int, default=None, help="most epochs to train (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate (default: the preset's)")
    p.add_argument("--lr-scaling", default="none", choices=["none", "linear"],
                   help="not the paper's: 'linear' multiplies the rate by --batch-size / the preset's batch and warms "
                        "it up over 5 epochs (Goyal et al. 2017), for large batches (default none)")
    p.add_argument("--warmup-epochs", type=int, default=None,
                   help="epochs of linear warm-up (default: 5 with --lr-scaling linear to a larger batch, else 0)")
    add_seed(p, "seed for init, data order, augmentation, dropout", type=int)
    add_device(p)
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its last.pt")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="start no epoch that would end after this many seconds of training (resume to go on)")
    add_speed_flags(p)
    p.add_argument("--workers", type=int, default=None,
                   help="data-loading processes (default: CPU count up to 8 on cuda, 0 = in-process on cpu)")
    p.add_argument("--pipeline", default="host", choices=list(PIPELINES),
                   help="where crops are cut and JPEGs decoded: " + "; ".join(f"{k}: {v}" for k, v in PIPELINES.items())
                        + " (default host)")
    p.add_argument("--model-parallel", default=None, metavar="DEV0,DEV1",
                   help="the paper's own parallelism (Section 3.2): one column of the network per device, e.g. "
                        "cuda:0,cuda:1; they exchange activations only at conv3 and the fully-connected layers "
                        "(default: the whole network on --device)")
    p.add_argument("--ablate", action="append", default=[], choices=list(ABLATIONS), metavar="NAME",
                   help=f"remove one ingredient of the preset (repeatable): {', '.join(ABLATIONS)}")
    p.add_argument("--init-from", default=None, metavar="RUN_OR_CHECKPOINT",
                   help="start from another run's weights (fine-tuning); a different class count gets a new "
                        "output layer")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="also write last.pt every STEPS steps inside an epoch (resumable to the step)")
    p.add_argument("--skip-bad-batches", action="store_true",
                   help="skip (and count) a batch whose loss is not finite or explodes, instead of stopping")
    p.add_argument("--log-steps", type=int, default=None, metavar="N",
                   help="also append the mean training loss of every N steps to RUN/steps.csv (rank 0's share)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log scalars, learning rate and the conv1 kernels to RUN/tensorboard")
    p.add_argument("--auto-resume", action="store_true",
                   help="resume when OUT/last.pt exists, else start (for restarts: torchrun --max-restarts, requeues)")
    add_quiet(p, " (epoch lines still print)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from ..training.trainer import TrainSettings, train

    if args.config and args.preset:
        raise AlexNetError("give --preset or --config, not both")
    result = train(TrainSettings(
        data=Path(args.data), out=Path(args.out), preset=args.preset or "paper", config=args.config,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
        resume=args.resume, workers=args.workers, pipeline=args.pipeline, time_limit=args.time_limit, precision=args.precision,
        channels_last=args.channels_last, compile=args.compile, init_from=args.init_from,
        ablations=tuple(args.ablate), checkpoint_every=args.checkpoint_every,
        skip_bad_batches=args.skip_bad_batches, auto_resume=args.auto_resume, tensorboard=args.tensorboard,
        log_steps=args.log_steps, lr_scaling=args.lr_scaling, warmup_epochs=args.warmup_epochs,
        model_parallel=tuple(args.model_parallel.split(",")) if args.model_parallel else None,
        progress=show_progress(args)))
    print(f"done: {result['stopped_because']}; last epoch {result['epoch']}: val top-1 error "
          f"{result['val_top1_error']:.2%}, top-5 error {result['val_top5_error']:.2%}. "
          f"Weights: {Path(args.out) / 'last.pt'}")
    return 0


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
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per run (default: the preset's)")
    p.add_argument("--seeds", nargs="+", type=nonnegative_int, default=[0], metavar="SEED",
                   help="train every variant once per seed, to show the noise beside the differences "
                        "(default: 0; e.g. --seeds 0 1 2)")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_ablate)


def run_ablate(args: argparse.Namespace) -> int:
    from ..experiments.ablate import run_ablation

    variants = list(ABLATIONS) if args.variants == ["all"] else args.variants
    table = run_ablation(args.data, args.out, args.preset, variants, epochs=args.epochs, seeds=args.seeds,
                         device=args.device, progress=show_progress(args))
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
    p.add_argument("--epochs", type=positive_int, default=40, help="most epochs per net (default 40)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per step (default 128)")
    p.add_argument("--target", type=float, default=0.25, help="training error to reach (default 0.25)")
    p.add_argument("--lr-relu", type=float, default=None, help="learning rate of the ReLU net (default 0.003)")
    p.add_argument("--lr-tanh", type=float, default=None, help="learning rate of the tanh net (default 0.03)")
    p.add_argument("--all-epochs", action="store_true", help="train every epoch, not only until the target")
    add_seed(p, "initial weights and batch order (default 0)", type=int)
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_relu_tanh)


def run_relu_tanh(args: argparse.Namespace) -> int:
    from ..experiments.relu_tanh import run_relu_tanh as relu_tanh

    relu_tanh(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, target=args.target,
              lr_relu=args.lr_relu, lr_tanh=args.lr_tanh, seed=args.seed, device=args.device,
              run_all=args.all_epochs, progress=show_progress(args))
    return 0
