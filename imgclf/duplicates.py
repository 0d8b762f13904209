"""Copies of one picture: the same file (SHA-256), or a resized, re-cropped or re-encoded copy.

Near duplicates are found in two steps: difference hashes within `check.near_duplicate_bits`
of each other propose a pair, and grey 16 x 16 thumbnails confirm it when their mean absolute
difference is at most `check.near_duplicate_max_diff` (of 255). The hash alone would also pair
different pictures of a similar layout, such as two handwritten zeros. prepare makes both
from each image decoded at a fixed size (imgclf.images.ANALYSIS_SIZE), never from the cache,
so the verdict does not depend on data.image_size. `check` reports the copies; `split` keeps
each set of copies on one side.
"""

from __future__ import annotations

import numpy as np

from imgclf.config import CheckParams
from imgclf.samples import Sample


class NearDuplicates:
    """Which of `samples` look the same as a given image. `thumbnails`: prepare's
    (n, 16, 16) uint8 array, a row per sample index."""

    def __init__(self, samples: list[Sample], thumbnails: np.ndarray, options: CheckParams) -> None:
        self.samples, self.thumbnails, self.options = samples, thumbnails, options
        self.hashes = np.array([int(s.dhash, 16) for s in samples], dtype=np.uint64)

    def of(self, sample: Sample) -> list[Sample]:
        """The samples (other files than `sample`'s own) that are near copies of it."""
        if not self.samples:
            return []
        distance = np.bitwise_count(self.hashes ^ np.uint64(int(sample.dhash, 16)))
        proposed = [
            self.samples[i] for i in np.flatnonzero(distance <= self.options.near_duplicate_bits)
        ]
        proposed = [s for s in proposed if s.sha256 != sample.sha256]
        if not proposed:
            return []
        own = self.thumbnails[sample.index].astype(np.int32)
        theirs = self.thumbnails[[s.index for s in proposed]].astype(np.int32)
        # Integer sums: the same on every CPU, whatever order they are added in.
        differences = np.abs(theirs - own).sum(axis=(1, 2))
        limit = self.options.near_duplicate_max_diff * own.size
        return [proposed[i] for i in np.flatnonzero(differences <= limit)]


def copy_groups(
    samples: list[Sample], thumbnails: np.ndarray, options: CheckParams
) -> dict[int, int]:
    """Each sample's index mapped to the index of the first sample of its set of copies
    (exact or near, transitively): samples that map to the same index are one picture."""
    parent = {s.index: s.index for s in samples}

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(a: int, b: int) -> None:
        first, second = sorted((root(a), root(b)))
        parent[second] = first

    first_with: dict[str, int] = {}
    for sample in samples:
        join(sample.index, first_with.setdefault(sample.sha256, sample.index))
    near = NearDuplicates(samples, thumbnails, options)
    for sample in samples:
        for other in near.of(sample):
            join(sample.index, other.index)
    return {s.index: root(s.index) for s in samples}
