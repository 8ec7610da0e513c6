"""Argument types and the flags that many commands share, declared once.

Types here only parse what has no settings object of its own; the settings of `train` (and of
`evaluate`) are range-checked where they are defined (config.TrainConfig, evaluate_checkpoints).
"""

from __future__ import annotations

import argparse


def int_at_least(minimum: int):
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


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def add_device(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--device", default=default,
                   help=f"cpu or cuda (default: {default or 'cuda when available'})")


def add_quiet(p: argparse.ArgumentParser, also: str = "") -> None:
    p.add_argument("--quiet", action="store_true", help=f"no progress display{also}")


def add_seed(p: argparse.ArgumentParser, help: str, type=nonnegative_int) -> None:
    p.add_argument("--seed", type=type, default=0, help=help)


def add_run_inputs(p: argparse.ArgumentParser, out_help: str, out_metavar: str = "DIR") -> None:
    """RUN, --out and --data: the arguments of every command that reads a trained run."""
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder or checkpoint file")
    p.add_argument("--out", required=True, metavar=out_metavar, help=out_help)
    p.add_argument("--data", default=None, metavar="DATA", help="prepared dataset (default: the run's)")


def add_speed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"],
                   help="training arithmetic (default: bf16 on CUDA, fp16 where bf16 is missing; fp32 on CPU)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory layout (default: on for CUDA, off on CPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (default: on for CUDA, off on CPU)")


def add_output_flags(p: argparse.ArgumentParser) -> None:
    """--json and --record, for the benchmarks."""
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--record", default=None, metavar="FILE", help="append the result to FILE (e.g. BENCHMARKS.md)")


def show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)

