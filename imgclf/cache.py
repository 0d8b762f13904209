"""The decoded-image cache: one .npy file of shape (n, size, size, 3), uint8.

It is written as a stream (never all images in memory) and read back row by row with
positional reads, so neither stage's memory grows with the number of images. prepare writes
its thumbnails (n, 16, 16) the same way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType

import numpy as np

from imgclf.atomic import atomic_path


class CacheWriter:
    """Append uint8 rows (images) of one shape one at a time; `close()` turns them into the
    .npy file atomically."""

    def __init__(self, path: Path, row_shape: tuple[int, ...]) -> None:
        self.path = path
        self.shape = row_shape
        self.count = 0
        self._raw_path = path.with_name(f".{path.name}.raw")
        self._raw_path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self._raw_path, "wb")  # noqa: SIM115 - closed by close() or __exit__

    def append(self, image: np.ndarray) -> int:
        """Write one row; return its index."""
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array of shape {self.shape}, got {image.shape}")
        self._raw.write(np.ascontiguousarray(image).tobytes())
        self.count += 1
        return self.count - 1

    def close(self) -> None:
        self._raw.close()
        header = {"descr": "|u1", "fortran_order": False, "shape": (self.count, *self.shape)}
        try:
            with atomic_path(self.path) as tmp, open(tmp, "wb") as out:
                np.lib.format.write_array_header_1_0(out, header)
                with open(self._raw_path, "rb") as raw:
                    shutil.copyfileobj(raw, out, length=16 << 20)
        finally:  # also when the disk is full: the staged rows would take the space to free
            self._raw_path.unlink()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._raw.close()
            self._raw_path.unlink(missing_ok=True)


class ImageCache:
    """Read rows of the cache by index; safe to use from DataLoader worker processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(file)
            self._offset = file.tell()
        if dtype != np.uint8 or len(shape) != 4:
            raise ValueError(f"{self.path} is not an image cache (dtype {dtype}, shape {shape})")
        self.shape: tuple[int, ...] = shape
        self._row_bytes = int(np.prod(shape[1:]))
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """Rows `indices` as one (len(indices), size, size, 3) array."""
        if self._pid != os.getpid():  # a forked worker must not share the parent's file offset
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
        out = np.empty((len(indices), *self.shape[1:]), dtype=np.uint8)
        flat = out.reshape(len(indices), self._row_bytes)
        for row, index in enumerate(indices):
            view = memoryview(flat[row])
            got = os.preadv(self._fd, [view], self._offset + int(index) * self._row_bytes)
            if got != self._row_bytes:
                raise OSError(f"{self.path}: short read at row {index} (truncated cache?)")
        return out

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_fd=None, _pid=-1)
        return state
