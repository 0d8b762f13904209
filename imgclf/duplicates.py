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

import math

import numpy as np

from imgclf.config import CheckParams
from imgclf.samples import Sample


class NearDuplicates:
    """The pairs of `samples` that look the same. `thumbnails`: prepare's (n, 16, 16) uint8
    array, a row per sample index."""

    def __init__(self, samples: list[Sample], thumbnails: np.ndarray, options: CheckParams) -> None:
        self.samples, self.options = samples, options
        self.hashes = np.array([int(s.dhash, 16) for s in samples], dtype=np.uint64)
        self.contents = np.array([s.sha256 for s in samples])
        # Integer sums: the same on every CPU, whatever order they are added in.
        self.pixels = thumbnails[[s.index for s in samples]].astype(np.int32)
        self.limit = options.near_duplicate_max_diff * math.prod(thumbnails.shape[1:])

    def pairs(self) -> list[tuple[Sample, Sample]]:
        """Each pair of near copies (files with other contents) among the samples, once."""
        # Two thumbnails' sums differ by at most the sum of their differences: in the order of
        # their sums, a thumbnail's copies lie within the limit after it, and the pairs farther
        # apart are never compared.
        sums = self.pixels.sum(axis=(1, 2))
        order = np.argsort(sums, kind="stable")
        ends = np.searchsorted(sums[order], sums[order] + self.limit, side="right")
        found = []
        for position, (first, end) in enumerate(zip(order, ends, strict=True)):
            others = order[position + 1 : end]
            distance = np.bitwise_count(self.hashes[others] ^ self.hashes[first])
            others = others[distance <= self.options.near_duplicate_bits]
            others = others[self.contents[others] != self.contents[first]]
            differences = np.abs(self.pixels[others] - self.pixels[first]).sum(axis=(1, 2))
            found += [
                (self.samples[first], self.samples[i]) for i in others[differences <= self.limit]
            ]
        return found


def joined(indices: list[int], pairs: list[tuple[int, int]]) -> dict[int, int]:
    """Each index mapped to the smallest index joined to it through `pairs`, transitively."""
    parent = {index: index for index in indices}

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for a, b in pairs:
        first, second = sorted((root(a), root(b)))
        parent[second] = first
    return {index: root(index) for index in indices}


def copy_groups(
    samples: list[Sample], thumbnails: np.ndarray, options: CheckParams
) -> dict[int, int]:
    """Each sample's index mapped to the index of the first sample of its set of copies
    (exact or near, transitively): samples that map to the same index are one picture."""
    first_with: dict[str, int] = {}
    exact = [(s.index, first_with.setdefault(s.sha256, s.index)) for s in samples]
    near = [(a.index, b.index) for a, b in NearDuplicates(samples, thumbnails, options).pairs()]
    return joined([s.index for s in samples], exact + near)
