"""Argument types and the flags that many commands share, declared once.

Types here only parse what has no settings object of its own; the settings of `train` (and of
`evaluate`) are range-checked where they are defined (config.TrainConfig, evaluate_checkpoints).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..config import MAX_COUNT, MAX_SEED


def whole(low: int, high: int = MAX_COUNT):
    """An argparse type: a whole number from low to high (the help shows the range)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value
    parse.bounds = (low, high)
    return parse


def real(low: float, high: float, above: bool = False):
    """An argparse type: a finite number from low (or above it) to high."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (above and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"must be a number {'above' if above else 'from'} {low:g} "
                                             f"{'and at most' if above else 'to'} {high:g}, got {text}")
        return value
    parse.bounds, parse.above = (low, high), above
    return parse


positive_int = whole(1)
nonnegative_int = whole(0)


class RangeHelp(argparse.HelpFormatter):
    """Help that states each numeric flag's range, taken from its type."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        bounds = getattr(action.type, "bounds", None)
        if bounds and "%(" not in text:
            above = "above " if getattr(action.type, "above", False) else ""
            text += f" [{above}{bounds[0]:g} to {bounds[1]:g}]" if isinstance(bounds[0], float) else \
                f" [{bounds[0]} to {bounds[1]}]"
        return text


class Parser(argparse.ArgumentParser):
    """argparse, with one line for a bad argument (the flag, what it takes, exit status 2); the usage is
    for --help."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", RangeHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")
        sys.exit(2)


def add_device(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--device", default=default,
                   help=f"cpu, cuda or cuda:N (default: {default or 'cuda when available'})")


def add_quiet(p: argparse.ArgumentParser, also: str = "") -> None:
    p.add_argument("--quiet", action="store_true", help=f"no progress display{also}")


def add_seed(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--seed", type=whole(0, MAX_SEED), default=0, help=help)


def add_force(p: argparse.ArgumentParser, files: str) -> None:
    """--force for a command that replaces its own earlier output in place and refuses a user's file."""
    p.add_argument("--force", action="store_true",
                   help=f"replace {files} in --out even when not ours (ours are replaced anyway)")


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
                   help="torch.compile the model (default: on for CUDA; refused on CPU, where it is slower and "
                        "miscomputes gradients)")


def add_output_flags(p: argparse.ArgumentParser) -> None:
    """--json and --record, for the benchmarks."""
    p.add_argument("--json", action="store_true", help="print one JSON object (progress lines go to stderr)")
    p.add_argument("--record", type=record_file, default=None, metavar="FILE",
                   help="append the result to FILE (e.g. BENCHMARKS.md)")


def record_file(text: str) -> str:
    """--record FILE: new, or a UTF-8 text file to append to; checked before the benchmark, not after it."""
    path = Path(text)
    if path.exists():
        try:
            if not path.is_file():
                raise argparse.ArgumentTypeError(f"{text}: not a regular file")
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise argparse.ArgumentTypeError(f"{text}: not a text file (UTF-8); give a Markdown file such as "
                                             "BENCHMARKS.md") from None
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"{text}: {exc.strerror or exc}") from None
    return text


def show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)

