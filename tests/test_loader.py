"""Batches held on the device and batches streamed from the cache file are the same batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.cache import CacheWriter, ImageCache
from imgclf.loader import Batches, CachedImages, make_batches


@pytest.fixture
def dataset(tmp_path: Path) -> CachedImages:
    rng = np.random.default_rng(0)
    with CacheWriter(tmp_path / "images.npy", (8, 8, 3)) as writer:
        for _ in range(50):
            writer.append(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    rows = np.arange(3, 50, 2)  # every other image, as a split takes some of the cache
    return CachedImages(ImageCache(tmp_path / "images.npy"), rows, rows % 5)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(("rank", "world_size"), [(0, 1), (1, 2)])
def test_held_and_streamed_batches_are_the_same(
    dataset: CachedImages, shuffle: bool, rank: int, world_size: int
) -> None:
    options = {
        "batch_size": 4,
        "shuffle": shuffle,
        "seed": 3,
        "device": torch.device("cpu"),
        "rank": rank,
        "world_size": world_size,
    }
    held = make_batches(dataset, on_device=True, **options)
    streamed = make_batches(dataset, on_device=False, **options)
    assert len(held) == len(streamed) and held.images == streamed.images
    for epoch in (1, 2):
        pairs = zip(held.epoch(epoch), streamed.epoch(epoch), strict=True)
        for (images, targets), (images_too, targets_too) in pairs:
            assert torch.equal(images, images_too) and torch.equal(targets, targets_too)
    if shuffle:
        first, second = (torch.cat([t for _, t in held.epoch(e)]) for e in (1, 2))
        assert not torch.equal(first, second), "each epoch is shuffled anew"


@pytest.mark.parametrize("num_workers", [0, 1])
def test_batches_leave_torchs_global_random_numbers_alone(
    dataset: CachedImages, num_workers: int
) -> None:
    # Training seeds the global generator per epoch and draws augmentation and dropout from
    # it; a resumed run's loader starts at a later epoch than an unbroken run's did.
    options = {"batch_size": 4, "shuffle": True, "seed": 3, "device": torch.device("cpu")}
    held = make_batches(dataset, on_device=True, **options)
    streamed = make_batches(dataset, num_workers=num_workers, **options)
    resumed = make_batches(dataset, num_workers=num_workers, **options)

    def draw_after(batches: Batches, epoch: int) -> float:
        torch.manual_seed(epoch)
        for _ in batches.epoch(epoch):
            pass
        return torch.rand(1).item()

    untouched = [torch.rand(1, generator=torch.Generator().manual_seed(e)).item() for e in (1, 2)]
    assert [draw_after(held, epoch) for epoch in (1, 2)] == untouched
    assert [draw_after(streamed, epoch) for epoch in (1, 2)] == untouched
    assert draw_after(resumed, 2) == untouched[1]
