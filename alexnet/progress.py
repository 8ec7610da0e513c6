"""Progress on long work: a bar redrawn in place on a terminal, plain log lines otherwise."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Counts `total` units of work labelled `label`.

    On a terminal it redraws one line at most ten times a second; when the stream is not a terminal
    (a log file, CI) it prints a line every `log_every` seconds and one at the end. `enabled=False`
    makes it silent.
    """

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True,
                 log_every: float = 30.0) -> None:
        self.total, self.label = max(0, total), label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every = log_every
        self.done = 0
        self.start = self.last_draw = time.monotonic()
        self.postfix = ""

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        now = time.monotonic()
        if not self.enabled:
            return
        if self.tty and now - self.last_draw >= 0.1:
            self._draw(now, end="\r")
        elif not self.tty and now - self.last_draw >= self.log_every:
            self._draw(now, end="\n")

    def close(self, postfix: str | None = None) -> None:
        if postfix is not None:
            self.postfix = postfix
        if self.enabled:
            self._draw(time.monotonic(), end="\n")

    def _draw(self, now: float, end: str) -> None:
        self.last_draw = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.done / self.total)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            # On a terminal a fixed-width bar and percentage keep the line still; a log gets neither padding.
            bar = ("#" * int(frac * 24)).ljust(24, ".") + " " if self.tty else ""
            percent = f"{100 * frac:3.0f}%" if self.tty else f"{100 * frac:.0f}%"
            text = (f"{self.label} {bar}{self.done}/{self.total} ({percent}) "
                    f"{format_duration(elapsed)}<{format_duration(eta)} {rate:.1f}/s")
        else:
            text = f"{self.label} {self.done} {format_duration(elapsed)} {rate:.1f}/s"
        if self.postfix:
            text += f" {self.postfix}"
        if self.tty:  # one terminal line exactly: a longer one wraps, and "\r" would leave its first part behind
            width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
            text = text[:width].ljust(width)
        self.stream.write(text + end)
        self.stream.flush()
