"""Reading images straight out of tar archives, without extracting anything.

ILSVRC's training set comes as one tar holding one tar per class. Instead of unpacking ~140 GB, we
list the regular files of the archive (descending into inner `.tar` members) with the byte range
each occupies in the outer file; a worker then reads an image with one seek and one read. Nothing is
ever written from an archive, so member names (absolute paths, `..`, links) cannot place files
anywhere: links, devices and folders are ignored, and names are only used as labels.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import AlexNetError, one_line


@dataclass(frozen=True)
class ImageRef:
    """Where one image's bytes are: a whole file, or `length` bytes at `offset` inside `path`."""

    name: str            # for messages: the file path, or "archive.tar:inner.tar:member"
    path: str
    offset: int = -1     # -1: the whole file
    length: int = 0

    @property
    def stem(self) -> str:
        """The image's file name without folders or extension (its id in ILSVRC's label files)."""
        last = self.name.rsplit(":", 1)[-1] if self.offset >= 0 else self.path
        return PurePosixPath(last.replace("\\", "/")).stem

    def open(self) -> io.BufferedIOBase | str:
        """Something PIL can open: the path itself, or the member's bytes."""
        if self.offset < 0:
            return self.path
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.length)
        if len(data) != self.length:
            raise OSError(f"archive member truncated ({len(data)} of {self.length} bytes)")
        return io.BytesIO(data)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")  # uncompressed only: members must be addressable by offset
    except tarfile.ReadError as exc:
        raise AlexNetError(f"{path}: not an uncompressed tar archive ({one_line(exc)}); "
                           "ILSVRC's image tars are plain .tar files, extract compressed ones first") from None
    except OSError as exc:
        raise AlexNetError(f"{path}: cannot open archive ({one_line(exc)})") from None


def list_tar_images(path: str | Path, extensions: tuple[str, ...]) -> list[tuple[tuple[str, ...], ImageRef]]:
    """Every image member of the tar at `path`, inner tars included, in archive order.

    Returns (folder parts, ref) pairs: the folder parts are the names of the inner tar (without
    `.tar`) and the member's parent folders, which the caller maps to a class; only plain base
    names are kept, never a path to write to.
    """
    path = Path(path)
    found: list[tuple[tuple[str, ...], ImageRef]] = []
    with _open_tar(path) as outer:
        try:
            members = outer.getmembers()
        except (tarfile.TarError, OSError) as exc:
            raise AlexNetError(f"{path}: damaged tar archive ({one_line(exc)})") from None
        for member in members:
            if not member.isfile():  # links, folders, devices: never followed
                continue
            name = PurePosixPath(member.name)
            if name.suffix.lower() == ".tar":
                found.extend(_inner_tar_images(path, outer, member, extensions))
            elif name.suffix.lower() in extensions:
                parts = tuple(p for p in name.parent.parts if p not in ("", ".", "..", "/"))
                found.append((parts, ImageRef(f"{path}:{member.name}", str(path), member.offset_data, member.size)))
    return found


def _inner_tar_images(path: Path, outer: tarfile.TarFile, member: tarfile.TarInfo,
                      extensions: tuple[str, ...]) -> list[tuple[tuple[str, ...], ImageRef]]:
    label = PurePosixPath(member.name).stem
    fileobj = outer.extractfile(member)
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as inner:
            found = []
            for m in inner.getmembers():
                if m.isfile() and PurePosixPath(m.name).suffix.lower() in extensions:
                    ref = ImageRef(f"{path}:{member.name}:{m.name}", str(path),
                                   member.offset_data + m.offset_data, m.size)
                    found.append(((label,), ref))
            return found
    except (tarfile.TarError, OSError) as exc:
        raise AlexNetError(f"{path}: inner archive {member.name} is damaged ({one_line(exc)})") from None


def read_member(path: str | Path, wanted: str, max_bytes: int | None = None) -> bytes | None:
    """The bytes of the regular member whose name ends with `wanted` (any compression), or None. A member
    larger than `max_bytes` is refused before it is read (a small archive can expand to gigabytes)."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if member.isfile() and (member.name == wanted or member.name.endswith("/" + wanted)):
                    if max_bytes is not None and member.size > max_bytes:
                        raise AlexNetError(f"{path}: member {member.name} would be {member.size:,} bytes, more than "
                                           f"the {max_bytes:,} it can be; refused")
                    f = tar.extractfile(member)
                    return f.read() if f is not None else None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise AlexNetError(f"{path}: cannot read archive ({one_line(exc)})") from None
    return None
