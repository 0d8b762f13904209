"""A data set that cannot be trained on stops with one message naming the cause."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from imgclf import paths
from imgclf.errors import UserError
from imgclf.prepare import Outputs, prepare
from imgclf.samples import read_manifest
from imgclf.split import assign_splits
from tests.conftest import ONE_TINY_EPOCH, ROOT, run, run_stage, write_params
from tests.dirty import write_data_set


def prepare_here(root: Path, make_params, **overrides) -> dict:
    params = make_params(data__root=str(root), data__image_size=16, **overrides)
    outputs = Outputs(
        root.parent / "prepared/images.npy",
        root.parent / "prepared/thumbnails.npy",
        root.parent / "prepared/manifest.csv",
        root.parent / "prepared/rejected.csv",
    )
    return prepare(params.data, params.prepare, outputs)


@pytest.mark.parametrize(
    ("counts", "words"),
    [
        ({}, "no images found under"),  # train/ holds only a note and an empty folder
        ({"train/a": 3}, "only one class ('a') with usable images"),
        ({"train/a": 3, "train/b": 3, "test/a": 1, "test/c": 1}, "test classes ['c'] have no"),
        ({"predict": 3}, "no usable training images"),
    ],
)
def test_a_data_set_that_cannot_be_trained_on_is_named(
    tmp_path: Path, make_params, counts: dict[str, int], words: str
) -> None:
    root = write_data_set(tmp_path / "data", counts)
    (root / "train/empty").mkdir(parents=True, exist_ok=True)
    (root / "train/notes.txt").write_text("labels to check")
    with pytest.raises(UserError, match=re.escape(words)):
        prepare_here(root, make_params)


def test_a_class_whose_every_file_is_rejected_leaves_one_class_and_the_report(
    tmp_path: Path, make_params
) -> None:
    root = write_data_set(tmp_path / "data", {"train/a": 3})
    (root / "train/b").mkdir()
    (root / "train/b/photo.jpg").write_text("not a photo")
    with pytest.raises(UserError) as raised:
        prepare_here(root, make_params)
    report = tmp_path / "prepared/rejected.csv"
    assert f"files rejected: 1, reasons in {report}" in str(raised.value)
    assert "train/b/photo.jpg,not an image" in report.read_text()


def test_a_missing_data_root_names_the_folder(tmp_path: Path, make_params) -> None:
    with pytest.raises(UserError, match=f"data.root: the folder {tmp_path / 'nowhere'} does not"):
        prepare_here(tmp_path / "nowhere", make_params)


def test_a_missing_train_folder_names_the_parameter(tmp_path: Path, make_params) -> None:
    root = write_data_set(tmp_path / "data", {"test/a": 2, "test/b": 2})
    with pytest.raises(UserError, match=r"data\.train_dir: .*train does not exist"):
        prepare_here(root, make_params)


def test_a_class_too_small_to_split_after_a_real_prepare_is_named(
    tmp_path: Path, make_params
) -> None:
    root = write_data_set(tmp_path / "data", {"train/big": 20, "train/tiny": 1})
    prepare_here(root, make_params)
    samples = read_manifest(tmp_path / "prepared/manifest.csv")
    with pytest.raises(UserError, match="class 'tiny' has only 1 training image, too few"):
        assign_splits(samples, make_params().split, 0)


def without_class_b(root: Path) -> None:
    shutil.rmtree(root / "train/b")


def with_a_name_not_utf8(root: Path) -> None:
    """validate refuses it first; prepare run by its command does not, and fails at the
    manifest. It sorts last, so the new cache's rows would differ from the old ones."""
    (root / "train/a/picture_0.png").rename(root / "train/a" / os.fsdecode(b"z\xe9.png"))


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (without_class_b, UserError, "only one class"),
        (with_a_name_not_utf8, UnicodeEncodeError, "surrogates not allowed"),
    ],
)
def test_a_prepare_that_fails_keeps_the_previous_outputs_whole(
    tmp_path: Path, make_params, change: Callable[[Path], None], error: type, words: str
) -> None:
    root = write_data_set(tmp_path / "data", {"train/a": 3, "train/b": 3})
    prepare_here(root, make_params)
    prepared = tmp_path / "prepared"
    before = {path.name: path.read_bytes() for path in prepared.iterdir()}
    assert sorted(before) == ["images.npy", "manifest.csv", "rejected.csv", "thumbnails.npy"]
    change(root)
    with pytest.raises(error, match=words):
        prepare_here(root, make_params)
    assert {path.name: path.read_bytes() for path in prepared.iterdir()} == before


def test_a_stage_prints_one_error_line_and_no_traceback(tmp_path: Path) -> None:
    for name in ("imgclf", "stages"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    write_params(ROOT / "params.yaml", tmp_path / "params.yaml", {"data.root": "data/my-photos"})
    result = run([sys.executable, "-m", "stages.prepare"], tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: data.root: the folder data/my-photos does not exist; point data.root in "
        "params.yaml at a folder holding train/<class>/ images (see README, 'Your own data')"
    ]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_no_predict_folder_gives_an_empty_submission_and_a_warning(workdir, capsys) -> None:
    """The decision: a submission with its header and no rows, a warning, and no scoring
    (submission.labels_file stays at its default, auto, and there is no labels file here)."""
    project = workdir(data__root="data/mine", **ONE_TINY_EPOCH)
    write_data_set(project / "data/mine", {"train/a": 6, "train/b": 6})
    for stage in ("prepare", "split", "check", "train_scratch", "train_transfer"):
        assert run_stage(stage) == 0, stage
    capsys.readouterr()

    assert run_stage("make_submission") == 0
    printed = capsys.readouterr().out
    assert "warning: no images in data/mine/predict" in printed
    with open(project / paths.SUBMISSION, newline="") as file:
        assert list(csv.reader(file)) == [["id", "label"]]
    metrics = json.loads((project / paths.METRICS / "submission.json").read_text())
    assert metrics == {"submission": {"model": "transfer", "images": 0, "scored": False}}
