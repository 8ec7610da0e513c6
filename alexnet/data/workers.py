"""Work spread over processes, for `prepare` and `proxy`: results as they come, a dead worker named; and
how many cores there are to spread it over (`usable_cores`, also the loader's default).

`multiprocessing.Pool` waits for ever when one of its workers is killed (the OOM killer, say); here the
run stops with a message instead, and whatever the caller wrote is kept for a rerun. Workers leave
Ctrl-C and SIGTERM to the main process, and die with it (Linux) rather than wait on their queue.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from ..errors import AlexNetError
from ..interrupt import ignore_stop_signals


def usable_cores() -> int:
    """The cores this process may run on (a job scheduler's or container's share), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def map_in_processes(run_chunk: Callable[[list], list], items: list, workers: int, died: str,
                     chunk: int = 16) -> Iterator:
    """run_chunk's results over `items`, `chunk` at a time in `workers` processes, in completion order.

    `run_chunk` must be a module-level function (it is sent to the workers by name). `died` is the
    message when a worker dies."""
    # fork where the platform has it (fast start); spawn elsewhere.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                             initializer=_worker_start) as pool:
        pending = {pool.submit(run_chunk, c) for c in chunks[:2 * workers]}
        queued = iter(chunks[2 * workers:])
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()
                    following = next(queued, None)
                    if following is not None:
                        pending.add(pool.submit(run_chunk, following))
        except BrokenProcessPool:
            raise AlexNetError(died) from None


def _worker_start() -> None:
    ignore_stop_signals()
    try:  # die with the main process: killed with -9, it could not stop its workers
        import ctypes
        import signal
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: orphans end when their queue closes, if ever
        pass
