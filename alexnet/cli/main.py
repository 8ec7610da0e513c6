"""`alexnet SUBCOMMAND ...`: the parser that lists every command, and the one place errors become exits.

Each command is a pair of small functions beside each other in one of the *_commands modules:
`add_NAME(sub)` declares its arguments, `run_NAME(args)` does the work. User errors (AlexNetError)
print one line `alexnet: error: ...` and exit with status 1; bad flags exit with status 2 (argparse's
convention); a training stopped before its end that can be resumed (a signal, --time-limit) exits with 75;
Ctrl-C at start-up with 130.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import AlexNetError
from ..interrupt import EXIT_INTERRUPTED
from ..version import __version__
from . import bench_commands, data_commands, run_commands, train_commands
from .arguments import Parser

COMMANDS = (data_commands.add_summary, data_commands.add_prepare, data_commands.add_config,
            train_commands.add_train, run_commands.add_evaluate, run_commands.add_predict,
            train_commands.add_ablate, train_commands.add_relu_tanh, run_commands.add_figures,
            run_commands.add_retrieval, run_commands.add_report, run_commands.add_export, run_commands.add_convert,
            data_commands.add_proxy, data_commands.add_demo, bench_commands.add_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="alexnet",
        description="AlexNet (Krizhevsky, Sutskever & Hinton, 2012): prepare data, train, evaluate.",
        epilog="Run `alexnet SUBCOMMAND --help` for each subcommand's options.")
    parser.add_argument("--version", action="version", version=f"alexnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for add in COMMANDS:
        add(sub)
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
        code = getattr(exc, "exit_code", 1)  # 2: a flag out of range; 75: training interrupted on request
        print(f"alexnet: {'stopped' if code == EXIT_INTERRUPTED else 'error'}: {message_of(exc)}", file=sys.stderr)
        return code
    except BrokenPipeError:  # output piped into `head` and the like: an ending, not an error (before OSError,
        _quiet_stdout()      # of which it is a kind)
        return 0
    except OSError as exc:  # a read-only or full disk, a vanished folder: the file and the reason, one line
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"alexnet: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("alexnet: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # the loader's workers failed outside training (evaluate --workers, bench data)
        from ..data.loader import loader_failure
        failed = loader_failure(exc)
        if failed is None:
            raise
        print(f"alexnet: error: {failed}; run again (with fewer --workers if memory is short)", file=sys.stderr)
        return 1


def message_of(exc: AlexNetError) -> str:
    """The error's own message. One raised in a DataLoader worker arrives wrapped in the worker's traceback
    ("Caught AlexNetError in DataLoader worker process 0. Original Traceback ..."): its last line is ours."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    return last.split(": ", 1)[1] if last.startswith("alexnet.errors.") and ": " in last else last


def _quiet_stdout() -> None:
    """After a closed pipe, stdout's pending output can never be written: point it at /dev/null so that
    Python's own flush at exit does not complain either."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
