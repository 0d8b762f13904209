"""make_submission: one row per usable predict/ image, and a score only over images it has a
true label for."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from imgclf import paths
from imgclf.submission import rejected_predict_files, score_against
from tests.conftest import ONE_TINY_EPOCH, run_stage
from tests.dirty import write_data_set


@pytest.mark.slow
def test_a_rejected_predict_file_is_named_and_an_unmatched_labels_file_scores_nothing(
    workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels saved by Excel (with a byte order mark) hold file names; the ids are stems
    (validate would stop this; make_submission must not report an accuracy over no image)."""
    project = workdir(data__root="data/mine", **ONE_TINY_EPOCH)
    root = write_data_set(project / "data/mine", {"train/a": 6, "train/b": 6, "predict": 2})
    (root / "predict/truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    labels = "id,label\npicture_12.png,a\npicture_13.png,b\n"
    (root / "predict_labels.csv").write_text(labels, encoding="utf-8-sig")
    for stage in ("prepare", "split", "check", "train_scratch", "train_transfer"):
        assert run_stage(stage) == 0, stage
    capsys.readouterr()

    assert run_stage("make_submission") == 0
    printed = capsys.readouterr().out
    assert "warning: 1 file in predict/ left out of the submission" in printed
    assert "predict/truncated.jpg (" in printed
    assert (
        "2 rows by the transfer model in data/submission.csv (1 predict file left out)" in printed
    )
    assert "unscored: no id of the submission (e.g. 'picture_12') is in" in printed
    metrics = json.loads((project / paths.METRICS / "submission.json").read_text())
    assert metrics == {"submission": {"model": "transfer", "images": 2, "scored": False}}

    workdir(data__root="data/mine", submission__id_from="name", **ONE_TINY_EPOCH)
    assert run_stage("make_submission") == 0
    with open(project / paths.SUBMISSION, newline="") as file:
        assert [row["id"] for row in csv.DictReader(file)] == ["picture_12.png", "picture_13.png"]
    scored = json.loads((project / paths.METRICS / "submission.json").read_text())["submission"]
    assert scored["scored"] is True and scored["scored_images"] == 2


def test_a_score_needs_an_image_with_a_label(tmp_path: Path, make_params) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("id,label\n1,a\n2,b\n", encoding="utf-8-sig")
    options = make_params().submission
    assert score_against([("1", "a"), ("2", "a"), ("3", "b")], truth, options) == {
        "scored_images": 2,
        "acc": 0.5,
    }
    assert score_against([("1.jpg", "a")], truth, options) is None


def test_rejected_predict_files_are_those_under_the_predict_folder(tmp_path: Path) -> None:
    rejected = tmp_path / "rejected.csv"
    rejected.write_text(
        "path,reason\n"
        "seg_pred/seg_pred/x.jpg,truncated\n"
        "seg_train/a/y.jpg,not an image\n"
        "seg_pred/other.jpg,truncated\n"
    )
    assert rejected_predict_files(rejected, "seg_pred/seg_pred/") == [
        ("seg_pred/seg_pred/x.jpg", "truncated")
    ]
