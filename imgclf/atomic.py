"""Write every output under a temporary name and rename it into place.

A stage killed at any moment, or a power cut, leaves either the old file or the new one,
never a torn one. A full disk leaves the old file too, and says so in one line.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from imgclf.errors import UserError


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


# What open() would give a new file: mkstemp's temporary file is private (0600).
NEW_FILE_MODE = 0o666 & ~_umask()

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or one it arose from, is a file system out of space or quota."""
    # torch.save raises its own RuntimeError around the OSError, or the OSError around it.
    while error is not None:
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:  # from here: an interruption (Ctrl-C, SIGTERM made an exception) removes it
        os.fchmod(fd, NEW_FILE_MODE)
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb") as written:  # on disk before it takes the name, for a power cut
            os.fsync(written.fileno())
        os.replace(tmp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # and the rename with it
        finally:
            os.close(folder)
    except (OSError, RuntimeError) as error:
        if is_disk_full(error):
            raise UserError(
                f"no space left on the device for {path} (an earlier version of it is kept): free "
                "some and run again; a training stage resumes from its last saved epoch"
            ) from error
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces `path` only when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as file:
        yield file


def write_json(path: str | Path, data: Any) -> None:
    with atomic_open(path) as file:
        json.dump(data, file, indent=2)
        file.write("\n")


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with atomic_open(path, newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as file:
        file.write(text)
