"""Assign every prepared image to train, val or test (stratified, seeded), each picture's
copies to one side."""

from collections import Counter

import numpy as np

from imgclf import paths
from imgclf.config import load_params
from imgclf.duplicates import copy_groups
from imgclf.errors import exit_on_user_error
from imgclf.samples import read_manifest, write_split
from imgclf.split import assign_splits


@exit_on_user_error
def main() -> None:
    params = load_params()
    samples = read_manifest(paths.MANIFEST)
    copies = None
    if params.split.keep_copies_together:
        train = [s for s in samples if s.source == "train"]
        thumbnails = np.load(paths.THUMBNAILS, mmap_mode="r")
        copies = copy_groups(train, thumbnails, params.check)
    assignment = assign_splits(samples, params.split, params.seed, copies)
    write_split(paths.SPLIT, assignment)
    counts = Counter(assignment.values())
    print(
        f"split: {counts['train']} images to train on, {counts['val']} to validate and "
        f"{counts['test']} to test, {counts['predict']} to predict; in {paths.SPLIT}"
    )


if __name__ == "__main__":
    main()
