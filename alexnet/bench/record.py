"""Where benchmark figures go: a line in BENCHMARKS.md with the command, the machine and the date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

from ..errors import AlexNetError
from ..files import write_text

LOG_HEADING = "## Benchmark log (appended by `alexnet bench ... --record`)"


def machine_description(device: torch.device | None = None) -> str:
    cpu = platform.processor() or platform.machine()
    text = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}"
    if device is not None and device.type == "cuda":
        text = f"{torch.cuda.get_device_name(device)}, " + text
    return text


def append_record(path: str | Path, title: str, result_line: str, device: torch.device | None = None,
                  command: str | None = None) -> None:
    """Append one dated entry under the benchmark-log heading of `path` (created if missing)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    except UnicodeDecodeError:  # checked when the command started (cli.arguments.record_file): changed since
        raise AlexNetError(f"{path}: not a text file (UTF-8); the record was not appended") from None
    if LOG_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{LOG_HEADING}\n"
    command = command or "alexnet " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    entry = f"\n- **{title}** ({date}; {machine_description(device)}): {result_line}  \n  `{command}`\n"
    write_text(path, text.rstrip("\n") + "\n" + entry, what="benchmark record")
