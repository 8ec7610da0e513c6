"""Preemption and Ctrl-C during training.

The first SIGTERM or SIGINT asks the training loop to stop at the next step boundary: it writes a
checkpoint of exactly where it is (mid-epoch included) and exits with `EXIT_INTERRUPTED` and a line
saying how to resume. A second signal exits at once (status 128 + signal number), leaving the last
checkpoint on disk as it was.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from .errors import AlexNetError

# EX_TEMPFAIL from sysexits.h: "try again later", i.e. resume; distinct from errors (1) and usage (2).
EXIT_INTERRUPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(AlexNetError):
    """Training stopped on request after writing a checkpoint; the CLI exits with EXIT_INTERRUPTED."""
    exit_code = EXIT_INTERRUPTED


class StopRequest:
    """Records the first stop signal; the training loop polls `requested` between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:
            sys.stderr.write(f"\nalexnet: second {signal.Signals(signum).name}: exiting now; the last checkpoint "
                             "on disk is intact\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signal = signum
        sys.stderr.write(f"\nalexnet: {signal.Signals(signum).name} received: stopping after this step and writing "
                         "a checkpoint (send it again to exit at once)\n")
        sys.stderr.flush()

    def install(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def ignore_stop_signals(worker_id: int = 0) -> None:
    """For loader worker processes: the training process alone decides how to stop (a Ctrl-C reaches
    the whole process group, and a worker killed by it would abort the loader mid-step)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
