"""split: a stratified, seeded train/val/test split of whatever the data did not split itself."""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.model_selection import train_test_split

from imgclf.config import SplitParams
from imgclf.errors import UserError
from imgclf.samples import Sample
from imgclf.wording import counted


def assign_splits(
    samples: list[Sample],
    options: SplitParams,
    seed: int,
    copies: dict[int, int] | None = None,
) -> dict[int, str]:
    """Map each labelled sample's cache index to train, val or test; predict images get 'predict'.

    Folders the user provided (val/, test/) are kept as they are; what is missing is carved
    out of train/ with the fractions in params.yaml, stratified by class. `copies` maps an
    index to its set of copies of one picture (imgclf.duplicates.copy_groups): each set goes
    to one side whole, so no picture is both trained on and validated or tested on.
    """
    split_of = {s.index: s.source for s in samples}
    train = _pictures([s for s in samples if s.source == "train"], copies or {})
    missing = [
        (name, fraction)
        for name, fraction in (("test", options.test_fraction), ("val", options.val_fraction))
        if name not in split_of.values()
    ]
    total = len(train)  # fractions are of all training pictures, not of what a carve left
    for name, fraction in missing:
        if fraction == 0:
            raise UserError(
                f"split.{name}_fraction is 0 and the data has no {name} images (data.{name}_dir): "
                f"set a fraction above 0 or add a folder of them"
            )
        train, carved = _carve(train, round(fraction * total), fraction, seed, name)
        for sample in (s for picture in carved for s in picture):
            split_of[sample.index] = name
    train = [s for picture in train for s in picture]
    if options.max_train_per_class is not None:
        kept = {s.index for s in _limit_per_class(train, options.max_train_per_class, seed)}
        for sample in train:
            if sample.index not in kept:
                del split_of[sample.index]
    return split_of


def _pictures(samples: list[Sample], copies: dict[int, int]) -> list[list[Sample]]:
    """The samples as pictures: each a list of the samples that are copies of it, in order."""
    pictures: dict[int, list[Sample]] = {}
    for sample in samples:
        pictures.setdefault(copies.get(sample.index, sample.index), []).append(sample)
    return list(pictures.values())


def _carve(
    pictures: list[list[Sample]], count: int, fraction: float, seed: int, name: str
) -> tuple[list[list[Sample]], list[list[Sample]]]:
    """Split `count` pictures off, stratified by the label of each one's first copy; every
    class must give at least one."""
    labels = [picture[0].label for picture in pictures]
    sizes = Counter(labels)
    too_small = sorted(label for label, n in sizes.items() if n < 2 or n * fraction < 0.5)
    if too_small:
        raise UserError(
            f"class {too_small[0]!r} has only {counted(sizes[too_small[0]], 'training image')},"
            f" too few to split off a {name} set (copies of one picture count once): add "
            f"images, or a folder of {name} images (data.{name}_dir), or raise "
            f"split.{name}_fraction"
        )
    try:
        keep, carved = train_test_split(
            pictures, test_size=count, stratify=labels, random_state=seed
        )
    except ValueError as error:
        raise UserError(f"cannot split off a {name} set: {error}") from None
    return keep, carved


def _limit_per_class(samples: list[Sample], limit: int, seed: int) -> list[Sample]:
    """Keep at most `limit` training images per class, chosen at random with the seed."""
    rng = np.random.default_rng(seed)
    kept = []
    for label in sorted({s.label for s in samples}):
        members = [s for s in samples if s.label == label]
        order = rng.permutation(len(members))[:limit]
        kept.extend(members[i] for i in sorted(order))
    return kept
