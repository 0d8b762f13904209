"""validate: what the parameters and the file tree alone can tell, before any stage runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from imgclf.errors import UserError
from imgclf.validate import validate
from tests.dirty import write_data_set

TWO_CLASSES = {"train/cats": 4, "train/dogs": 4, "test/cats": 1, "test/dogs": 1}


@pytest.fixture
def params_for(make_params):
    """Parameters for a data root of a few images (a quarter of them enough for val)."""

    def make(root: Path, **overrides):
        overrides = {"split__val_fraction": 0.25, **overrides}
        return make_params(data__root=str(root), **overrides)

    return make


def test_a_usable_folder_is_described(tmp_path: Path, params_for) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 2})
    found = validate(params_for(root))
    assert found == {
        "data_root": str(root),
        "image_files": {"predict": 2, "test": 2, "train": 8},
        "classes": ["cats", "dogs"],
        "labels_file": None,
    }


@pytest.mark.parametrize(
    ("counts", "overrides", "words"),
    [
        ({"train/cats": 4}, {}, "only one class ('cats')"),
        (TWO_CLASSES, {"split__val_fraction": 0.05}, "too few to split off a val set"),
        ({"test/cats": 3}, {}, "data.train_dir:"),
        (TWO_CLASSES, {"submission__labels_file": "truth.csv"}, "truth.csv does not exist"),
    ],
)
def test_what_would_fail_later_fails_now(
    tmp_path: Path, params_for, counts: dict, overrides: dict, words: str
) -> None:
    root = write_data_set(tmp_path / "photos", counts)
    with pytest.raises(UserError, match=re.escape(words)):
        validate(params_for(root, **overrides))


def test_a_missing_train_folder_says_dvc_drops_empty_folders(tmp_path: Path, params_for) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(UserError, match="DVC did not keep them"):
        validate(params_for(tmp_path / "photos"))


def test_no_images_names_the_extensions_prepare_reads(tmp_path: Path, params_for) -> None:
    (tmp_path / "photos/train/cats").mkdir(parents=True)
    with pytest.raises(UserError) as raised:
        validate(params_for(tmp_path / "photos"))
    for extension in (".jpg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"):
        assert extension in str(raised.value)


def test_broken_links_are_named(tmp_path: Path, params_for) -> None:
    root = write_data_set(tmp_path / "photos", TWO_CLASSES)
    (root / "train/cats/moved.png").symlink_to(tmp_path / "gone.png")
    (root / "train/dogs/old").symlink_to(tmp_path / "gone")
    with pytest.raises(UserError) as raised:
        validate(params_for(root))
    message = str(raised.value)
    assert "train/cats/moved.png" in message and "train/dogs/old" in message


@pytest.mark.parametrize(
    ("header", "labels_file", "found"),
    [
        ("id,label", "auto", "predict_labels.csv"),
        ("id,label", "truth.csv", "truth.csv"),
        ("id,label", None, None),
    ],
)
def test_the_labels_file_is_found_or_named(
    tmp_path: Path, params_for, header: str, labels_file: str | None, found: str | None
) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 2})
    for name in ("predict_labels.csv", "truth.csv"):
        (root / name).write_text(f"{header}\npicture_10,cats\n")
    params = params_for(root, submission__labels_file=labels_file)
    assert validate(params)["labels_file"] == (str(root / found) if found else None)


def test_a_labels_file_without_the_columns_stops(tmp_path: Path, params_for) -> None:
    root = write_data_set(tmp_path / "photos", TWO_CLASSES)
    (root / "predict_labels.csv").write_text("image,class\nx,cats\n")
    with pytest.raises(UserError, match=r"no column 'id' \(its columns: image, class\)"):
        validate(params_for(root))


@pytest.mark.parametrize(
    ("id_from", "second", "shared"),
    [
        ("stem", "predict/picture_10.jpg", "'picture_10'"),
        ("name", "predict/sub/picture_10.png", "'picture_10.png'"),
    ],
)
def test_predict_files_that_share_an_id_stop(
    tmp_path: Path, params_for, id_from: str, second: str, shared: str
) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 1})
    (root / second).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "predict/picture_10.png", root / second)
    with pytest.raises(UserError) as raised:
        validate(params_for(root, submission__id_from=id_from))
    message = str(raised.value)
    clash = sorted(["predict/picture_10.png", second])
    assert f"{clash[0]} and {clash[1]} share the id {shared}" in message
    assert "path to give each file its own id" in message


def test_a_labels_file_saved_by_excel_is_read(tmp_path: Path, params_for) -> None:
    """Excel writes UTF-8 with a byte order mark, which must not become part of 'id'."""
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 1})
    (root / "predict_labels.csv").write_text("id,label\npicture_10,cats\n", encoding="utf-8-sig")
    assert validate(params_for(root))["labels_file"] == str(root / "predict_labels.csv")


def test_a_labels_file_with_none_of_the_ids_stops_and_names_the_option_that_matches(
    tmp_path: Path, params_for
) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 2})
    (root / "predict_labels.csv").write_text("id,label\npicture_10.png,cats\n")
    with pytest.raises(UserError) as raised:
        validate(params_for(root, submission__id_from="stem"))
    message = str(raised.value)
    assert "submission.id_from: stem gives ids like 'picture_10'" in message
    assert "its ids look like 'picture_10.png'" in message
    assert "Set submission.id_from: name (then 1 of 2 match)" in message


def test_a_labels_file_with_some_of_the_ids_is_a_warning(
    tmp_path: Path, params_for, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 2})
    (root / "predict_labels.csv").write_text("id,label\npicture_10,cats\n")
    validate(params_for(root))
    assert "1 of 2 (e.g. 'picture_11'); the submission is scored on the other 1" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({"transfer__pretrained": False, "transfer__frozen_epochs": 2}, True),
        ({"transfer__pretrained": False, "transfer__frozen_share": 0.5}, True),
        ({"transfer__pretrained": False}, False),
        ({"transfer__frozen_epochs": 2}, False),
    ],
)
def test_a_frozen_backbone_without_pretrained_weights_is_a_warning(
    tmp_path: Path, params_for, capsys: pytest.CaptureFixture[str], overrides: dict, warned: bool
) -> None:
    validate(params_for(write_data_set(tmp_path / "photos", TWO_CLASSES), **overrides))
    out = capsys.readouterr().out
    assert ("is frozen (transfer.frozen_" in out) is warned, out
