"""The image cache: streamed in, read back by row, atomically replaced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgclf.cache import CacheWriter, ImageCache


def test_rows_read_back_as_written_and_np_load_agrees(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / "images.npy"
    with CacheWriter(path, (8, 8, 3)) as writer:
        for image in images:
            writer.append(image)
    cache = ImageCache(path)
    assert len(cache) == 5
    assert np.array_equal(cache.read([3, 0, 3]), images[[3, 0, 3]])
    assert np.array_equal(np.load(path), images)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy"]


def test_a_failure_while_writing_keeps_the_old_cache(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    with CacheWriter(path, (4, 4, 3)) as writer:
        writer.append(np.zeros((4, 4, 3), np.uint8))
    before = path.read_bytes()
    with pytest.raises(RuntimeError), CacheWriter(path, (4, 4, 3)) as writer:
        writer.append(np.ones((4, 4, 3), np.uint8))
        raise RuntimeError("killed")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy"]


def test_a_failure_while_closing_leaves_no_staged_rows(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    path.mkdir()  # the cache cannot take this name: the rename onto it fails
    with pytest.raises(IsADirectoryError), CacheWriter(path, (4, 4, 3)) as writer:
        writer.append(np.zeros((4, 4, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy"]
    assert path.is_dir() and not any(path.iterdir())
