"""Batches of cached images as uint8 tensors; augmentation happens later, on the device."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from imgclf.cache import ImageCache


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

    def __iter__(self):
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


def make_loader(
    dataset: CachedImages,
    batch_size: int,
    shuffle: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Training loaders shuffle with `seed` (call `sampler.set_epoch` each epoch) and each
    rank reads its own shard; evaluation loaders keep the order."""
    if shuffle:
        sampler: Sampler[int] = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
    else:
        sampler = Shard(len(dataset), rank, world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_as_is,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
