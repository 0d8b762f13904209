"""Batches of cached images as uint8 tensors; augmentation happens later, on the device.

Two ways to the same batches: held on the device (GPU memory, or RAM on the CPU) and sliced
there, with no loader in the hot loop; or streamed from the cache file by a DataLoader, with
memory flat in the number of images. Both take their order from the same samplers, so a
run's batches, and its results, do not depend on which one the machine could afford.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from imgclf.cache import ImageCache

Batch = tuple[torch.Tensor, torch.Tensor]  # uint8 images (N, H, W, C), int64 class ids


class CachedImages(Dataset):
    """The cache rows `indices` with their class ids; fetched a whole batch at a time."""

    def __init__(self, cache: ImageCache, indices: np.ndarray, targets: np.ndarray) -> None:
        self.cache = cache
        self.indices = np.asarray(indices, dtype=np.int64)
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.from_numpy(self.cache.read(self.indices[positions]))
        return images, self.targets[positions]

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = self.__getitems__([position])
        return images[0], targets[0]


def _as_is(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch


class Shard(Sampler[int]):
    """Every world_size-th position from `rank`, in order, with no padding: evaluation
    summed over the ranks then counts each image exactly once."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.positions = range(rank, length, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """A uint8 (N, H, W, C) batch as a model reads it: float (N, C, H, W), 0 to 255. The
    permuted view keeps the pixels in channels-last order, which convolutions prefer."""
    return images.permute(0, 3, 1, 2).float()


class Batches(Protocol):
    """One split's batches for this process, in the order of `epoch`'s shuffle."""

    images: int  # this process's images per epoch

    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[Batch]: ...


class StreamedBatches:
    """Batches read from the cache file by a DataLoader and moved to the device."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader, self.device = loader, device
        self.images = len(loader.sampler)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(epoch)
        for images, targets in self.loader:
            yield (
                images.to(self.device, non_blocking=True),
                targets.to(self.device, non_blocking=True),
            )


class DeviceBatches:
    """The split's images loaded once onto the device; each epoch's order (the sampler's,
    one small copy per epoch) indexes them there, so a step never waits for the host."""

    def __init__(
        self, dataset: CachedImages, sampler: Sampler[int], batch_size: int, device: torch.device
    ) -> None:
        self.sampler, self.batch_size, self.device = sampler, batch_size, device
        self.pixels = torch.from_numpy(dataset.cache.read(dataset.indices)).to(device)
        self.targets = dataset.targets.to(device)
        self.images = len(sampler)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return -(-self.images // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler), dtype=torch.int64).to(self.device)
        for start in range(0, self.images, self.batch_size):
            rows = order[start : start + self.batch_size]
            yield self.pixels.index_select(0, rows), self.targets.index_select(0, rows)


def cache_bytes(cache: ImageCache, rows: Sequence[int] | np.ndarray) -> int:
    """Memory that `rows` of the cache take as one uint8 tensor."""
    return len(rows) * int(np.prod(cache.shape[1:]))


def make_batches(
    dataset: CachedImages,
    batch_size: int,
    shuffle: bool,
    seed: int,
    device: torch.device,
    on_device: bool = False,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
) -> Batches:
    """Training batches are shuffled with `seed` anew each epoch and each rank takes its own
    shard; evaluation batches keep the order. `on_device` holds the images on the device."""
    if shuffle:
        sampler: Sampler[int] = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
    else:
        sampler = Shard(len(dataset), rank, world_size)
    if on_device:
        return DeviceBatches(dataset, sampler, batch_size, device)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_as_is,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        # Its own generator: each new iterator draws a worker seed from it, and a draw from
        # torch's global one would shift the epoch's augmentation and dropout.
        generator=torch.Generator().manual_seed(seed),
    )
    return StreamedBatches(loader, device)
