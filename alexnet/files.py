"""The one way this project writes a file that a crash could tear.

Everything is written to a hidden temporary file beside the target (`.NAME.PID.tmp`), flushed to disk,
then renamed over the target: a crash, a kill or a full disk at any moment leaves the old file or the
new one, never half of one, and no temporary file behind on an error the process survives.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import AlexNetError


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`. For writers that need a name.

    Only a regular file is ever replaced: a folder, a device, a pipe or a link at `path` is refused
    before anything is written (the rename would otherwise put the file in its place)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise AlexNetError(f"{path}: exists and is not a regular file; refused (choose another name)")
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary new file: some writers create theirs private
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # a full disk, a read-only or vanished folder (torch's zip writer
        tmp.unlink(missing_ok=True)        # reports a full disk as a RuntimeError): the old file stays
        reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
        raise AlexNetError(f"could not write {what} {path} ({reason}); the previous {what} there, "
                           "if any, is intact") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb", what: str = "file") -> Iterator[IO[Any]]:
    """Yield an open file to write; on success it replaces `path`."""
    with atomic_path(path, what) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f


FORCE_OR_RENAME = "pass --force to replace it, or choose another name"


def refuse_to_replace_foreign(path: str | Path, mark: bytes, what: str, remedy: str = FORCE_OR_RENAME) -> None:
    """Before any work: refuse when `path` holds a file without `mark` near its start, the sign this
    project's writers leave in what they write (a file of ours is replaced; another only as `remedy` says)."""
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as f:
            if mark not in f.read(4096):
                raise AlexNetError(f"{path}: exists and is not {what} of ours; {remedy}")


def refuse_to_replace_foreign_outputs(folder: str | Path, outputs: dict[str, tuple[str, str]],
                                      remedy: str = FORCE_OR_RENAME) -> None:
    """refuse_to_replace_foreign for each file a command writes into `folder`: name -> (mark, what it is)."""
    for name, (mark, what) in outputs.items():
        refuse_to_replace_foreign(Path(folder) / name, mark.encode(), what, remedy)


def write_text(path: str | Path, text: str, what: str = "file") -> Path:
    with atomic_file(path, "w", what) as f:
        f.write(text)
    return Path(path)


def write_json(path: str | Path, data: Any, what: str = "file", indent: int = 1) -> Path:
    return write_text(path, json.dumps(data, indent=indent) + "\n", what)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class FolderLock:
    """An exclusive lock on a folder for one process's life (`RUN/.lock`, flock): a second process that
    asks for it is refused at once. The operating system drops it when the holder exits or is killed,
    so a dead process never leaves a stale lock; the file records who holds it."""

    def __init__(self, folder: str | Path, what: str) -> None:
        self.path, self.what, self.file = Path(folder) / ".lock", what, None

    def acquire(self) -> "FolderLock":
        import fcntl  # POSIX; where it is missing the lock is skipped (see release)

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            self.file = None
            raise AlexNetError(f"{self.path.parent}: {self.what} is already in use by {holder}; wait for it to "
                               "finish or choose another folder") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"process {os.getpid()}")
        self.file.flush()
        return self

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing drops the flock
            self.file = None


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Temporary files (`.NAME.PID.tmp`) left by writers that were killed: those whose process is gone."""
    removed = []
    for tmp in Path(folder).glob(".*.*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
