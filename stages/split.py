"""Assign every prepared image to train, val or test (stratified, seeded)."""

from collections import Counter

from imgclf import paths
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.samples import read_manifest, write_split
from imgclf.split import assign_splits


@exit_on_user_error
def main() -> None:
    params = load_params()
    assignment = assign_splits(read_manifest(paths.MANIFEST), params.split, params.seed)
    write_split(paths.SPLIT, assignment)
    counts = Counter(assignment.values())
    print(
        f"split: {counts['train']} images to train on, {counts['val']} to validate and "
        f"{counts['test']} to test, {counts['predict']} to predict; in {paths.SPLIT}"
    )


if __name__ == "__main__":
    main()
