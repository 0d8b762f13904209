"""split: stratified and seeded; folders the user split themselves are kept."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from imgclf import paths
from imgclf.errors import UserError
from imgclf.samples import Sample, load_split_data
from imgclf.split import assign_splits
from tests.conftest import run_stage
from tests.dirty import picture


def samples(per_class: dict[str, int], source: str = "train", start: int = 0) -> list[Sample]:
    out = []
    for label, count in per_class.items():
        for _ in range(count):
            i = start + len(out)
            out.append(
                Sample(i, f"{source}/{label}/{i}.png", source, label, 8, 8, f"{i:064x}", "0" * 16)
            )
    return out


def test_val_and_test_are_carved_from_train_stratified(make_params) -> None:
    data = samples({"a": 100, "b": 60})
    split = assign_splits(
        data, make_params(split__val_fraction=0.2, split__test_fraction=0.1).split, 0
    )
    counts = Counter((split[s.index], s.label) for s in data)
    assert counts[("val", "a")] == 20 and counts[("val", "b")] == 12
    assert counts[("test", "a")] == 10 and counts[("test", "b")] == 6
    assert counts[("train", "a")] == 70 and counts[("train", "b")] == 42


def test_the_same_seed_gives_the_same_split_and_another_seed_another(make_params) -> None:
    data = samples({"a": 50, "b": 50})
    options = make_params().split
    assert assign_splits(data, options, 3) == assign_splits(data, options, 3)
    assert assign_splits(data, options, 3) != assign_splits(data, options, 4)


def test_a_test_folder_is_kept_and_only_val_is_carved(make_params) -> None:
    train = samples({"a": 40, "b": 40})
    test = samples({"a": 5, "b": 5}, source="test", start=100)
    predict = [Sample(200, "predict/x.png", "predict", "", 8, 8, "f" * 64, "0" * 16)]
    split = assign_splits(train + test + predict, make_params(split__val_fraction=0.25).split, 0)
    assert all(split[s.index] == "test" for s in test)
    assert Counter(split[s.index] for s in train) == {"train": 60, "val": 20}
    assert split[200] == "predict"


@pytest.mark.parametrize(("size", "words"), [(2, "2 training images,"), (1, "1 training image,")])
def test_a_class_too_small_to_split_is_named(make_params, size: int, words: str) -> None:
    data = samples({"big": 50, "tiny": size})
    with pytest.raises(UserError, match=f"class 'tiny' has only {words} too few"):
        assign_splits(data, make_params().split, 0)


def test_max_train_per_class_keeps_a_seeded_subset_of_train_only(make_params) -> None:
    data = samples({"a": 100, "b": 100})
    split = assign_splits(data, make_params(split__max_train_per_class=10).split, 0)
    counts = Counter((split.get(s.index), s.label) for s in data)
    assert counts[("train", "a")] == 10 and counts[("train", "b")] == 10
    assert counts[("val", "a")] == 15 and counts[("test", "a")] == 15


def write_copies(root: Path, pictures_per_class: int = 20) -> dict[str, set[str]]:
    """train/<class>/: each picture beside an exact copy and a smaller JPEG of it; returns
    the set of paths (relative to root) of each picture's copies."""
    sets = {}
    for offset, label in enumerate(("a", "b")):
        folder = root / "train" / label
        folder.mkdir(parents=True)
        for number in range(pictures_per_class):
            name = f"{label}{number}"
            original = picture(offset * pictures_per_class + number)
            original.save(folder / f"{name}.png")
            original.save(folder / f"{name}_copy.png")
            original.resize((60, 60)).save(folder / f"{name}_small.jpg", quality=80)
            sets[name] = {
                f"train/{label}/{name}{end}" for end in (".png", "_copy.png", "_small.jpg")
            }
    return sets


@pytest.mark.parametrize("together", [True, False])
def test_copies_of_a_picture_land_in_one_split(workdir, together: bool) -> None:
    project = workdir(
        data__root="data/photos",
        split__val_fraction=0.25,
        split__test_fraction=0.25,
        split__keep_copies_together=together,
    )
    sets = write_copies(project / "data/photos")
    assert run_stage("prepare") == 0 and run_stage("split") == 0
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    split_of_path = {s.path: data.split_of[s.index] for s in data.samples}
    divided = [name for name, paths_ in sets.items() if len({split_of_path[p] for p in paths_}) > 1]
    assert (divided == []) is together, divided
