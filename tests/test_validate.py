"""validate: what the parameters and the file tree alone can tell, before any stage runs."""

from __future__ import annotations

import os
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
        ({**TWO_CLASSES, "test/birds": 1}, {}, "test classes ['birds'] have no training images"),
        (TWO_CLASSES, {"submission__labels_file": "truth.csv"}, "truth.csv does not exist"),
    ],
)
def test_what_would_fail_later_fails_now(
    tmp_path: Path, params_for, counts: dict, overrides: dict, words: str
) -> None:
    root = write_data_set(tmp_path / "photos", counts)
    with pytest.raises(UserError, match=re.escape(words)):
        validate(params_for(root, **overrides))


def test_a_class_missing_from_training_names_the_folder_as_configured(
    tmp_path: Path, params_for
) -> None:
    counts = {"seg_train/cats": 4, "seg_train/dogs": 4, "seg_test/seg_test/birds": 1}
    root = write_data_set(tmp_path / "photos", counts)
    params = params_for(root, data__train_dir="seg_train", data__test_dir="seg_test/seg_test")
    with pytest.raises(UserError) as raised:
        validate(params)
    assert str(raised.value).endswith(f"remove them from {root / 'seg_test/seg_test'}")


def test_no_val_images_and_no_fraction_names_the_key_of_the_folder(
    tmp_path: Path, params_for
) -> None:
    root = write_data_set(tmp_path / "photos", TWO_CLASSES)
    with pytest.raises(UserError, match=re.escape("no val images (data.val_dir)")):
        validate(params_for(root, split__val_fraction=0))


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


def test_names_that_are_not_utf8_stop_and_are_named(tmp_path: Path, params_for) -> None:
    """A zip made on Windows, unpacked on Linux, keeps its cp1252 names: prepare cannot list
    them in UTF-8."""
    root = write_data_set(tmp_path / "photos", TWO_CLASSES)
    shutil.copy(root / "train/cats/picture_0.png", root / os.fsdecode(b"train/cats/caf\xe9.png"))
    write_data_set(root, {os.fsdecode(b"train/\xc9t\xe9"): 4}, first_seed=20)  # a class
    with pytest.raises(UserError) as raised:
        validate(params_for(root))
    message = str(raised.value)
    assert r"train/\xc9t\xe9; train/cats/caf\xe9.png. Rename them" in message
    assert f"convmv -f cp1252 -t utf8 -r --notest {root}" in message


@pytest.mark.parametrize(
    ("encoded", "words"),
    [
        ("id,label\npicture_10,café\n".encode("cp1252"), "line 2 has the byte 0xe9"),
        ("id\tlabel\npicture_10\tcats\n".encode("utf-16"), "UTF-16: Excel's 'Unicode Text'"),
    ],
    ids=["cp1252", "utf-16"],
)
def test_a_labels_file_that_is_not_utf8_stops(
    tmp_path: Path, params_for, encoded: bytes, words: str
) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 1})
    (root / "predict_labels.csv").write_bytes(encoded)
    with pytest.raises(UserError) as raised:
        validate(params_for(root))
    message = str(raised.value)
    assert f"{root / 'predict_labels.csv'} is not UTF-8 text" in message
    assert words in message and "Save it as 'CSV UTF-8'" in message


def test_labels_that_are_no_class_are_a_warning(
    tmp_path: Path, params_for, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 3})
    labels = "id,label\npicture_10,cats\npicture_11,Dogs\npicture_12,\n"
    (root / "predict_labels.csv").write_text(labels)
    validate(params_for(root))
    assert (
        "1 row with a label that is no class (e.g. 'Dogs') and 1 row with an empty label, of 3 "
        "(the classes: 'cats'; 'dogs')"
    ) in capsys.readouterr().out


def test_labels_none_of_which_is_a_class_stop(tmp_path: Path, params_for) -> None:
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 2})
    (root / "predict_labels.csv").write_text("id,label\npicture_10,cat_0\npicture_11,dog_1\n")
    with pytest.raises(UserError) as raised:
        validate(params_for(root))
    message = str(raised.value)
    assert "its labels look like 'cat_0', 'dog_1'; the classes: 'cats'; 'dogs'" in message
    assert "column 'label' hold the names of the class folders" in message


def test_folders_linked_in_are_a_warning(
    tmp_path: Path, params_for, capsys: pytest.CaptureFixture[str]
) -> None:
    """DVC hashes a link to a folder, not what is in it: a change there reruns nothing."""
    root = write_data_set(tmp_path / "photos", TWO_CLASSES)
    shutil.move(root / "train/dogs", tmp_path / "dogs")
    (root / "train/dogs").symlink_to(tmp_path / "dogs", target_is_directory=True)
    (root / "train/cats/linked.png").symlink_to(tmp_path / "dogs/picture_4.png")  # DVC follows
    validate(params_for(root))
    out = capsys.readouterr().out
    assert f"folders linked in, which DVC does not look inside: train/dogs -> {tmp_path}/dogs." in (
        out
    )
    assert "linked.png" not in out and "dvc repro --force prepare" in out


def test_the_scans_warnings_are_printed(
    tmp_path: Path, params_for, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_data_set(tmp_path / "photos", TWO_CLASSES)
    (root / "train/birds").mkdir()
    (root / "train/birds/robin.jfif").write_bytes(b"\xff\xd8\xff")  # no extension prepare reads
    validate(params_for(root))
    assert "warning: train/birds/ holds no images: not a class" in capsys.readouterr().out


def test_names_that_are_not_utf8_in_a_linked_folder_stop(tmp_path: Path, params_for) -> None:
    """validate walks as DVC does, links not followed; prepare lists what they hold."""
    root = write_data_set(tmp_path / "photos", TWO_CLASSES)
    shutil.move(root / "train/dogs", tmp_path / "dogs")
    (root / "train/dogs").symlink_to(tmp_path / "dogs", target_is_directory=True)
    shutil.copy(tmp_path / "dogs/picture_4.png", tmp_path / os.fsdecode(b"dogs/caf\xe9.png"))
    write_data_set(tmp_path, {os.fsdecode(b"dogs/\xc9t\xe9"): 2}, first_seed=20)  # a folder
    with pytest.raises(UserError) as raised:
        validate(params_for(root))
    message = str(raised.value)
    assert r"prepare cannot list: train/dogs/caf\xe9.png; train/dogs/\xc9t\xe9. Rename" in message


@pytest.mark.parametrize(
    ("counts", "named"),
    [
        (
            {"train/caf\u00e9": 4, "train/dogs": 4, "test/cafe\u0301": 1, "test/dogs": 1},
            "train/caf\u00e9 (NFC) and test/cafe\u0301 (NFD)",
        ),
        (
            {**TWO_CLASSES, "train/caf\u00e9": 4, "train/cafe\u0301": 4},
            "train/cafe\u0301 (NFD) and train/caf\u00e9 (NFC)",  # as sorted: "e" before "\u00e9"
        ),
    ],
    ids=["across splits", "in one split"],
)
def test_class_names_written_in_two_unicode_forms_stop(
    tmp_path: Path, params_for, counts: dict, named: str
) -> None:
    """macOS writes names decomposed (NFD): 'café' from a Mac and from Linux print alike but
    are two folders."""
    root = write_data_set(tmp_path / "photos", counts)
    with pytest.raises(UserError) as raised:
        validate(params_for(root))
    message = str(raised.value)
    assert f"differ only in Unicode normalisation (NFC and NFD): {named}. Rename one" in message


NFC_CAFE, NFD_CAFE = "caf\u00e9", "cafe\u0301"  # print alike: 'café'


@pytest.mark.parametrize("all_of_them", [False, True], ids=["some", "all"])
def test_ids_in_the_labels_file_in_another_unicode_form_are_named_as_such(
    tmp_path: Path, params_for, capsys: pytest.CaptureFixture[str], all_of_them: bool
) -> None:
    """Predict files from a Mac (NFD names) and a labels file typed elsewhere (NFC)."""
    root = write_data_set(tmp_path / "photos", {**TWO_CLASSES, "predict": 2})
    (root / "predict/picture_10.png").rename(root / f"predict/{NFD_CAFE}.png")
    other = "picture_11" if not all_of_them else "nowhere"
    (root / "predict_labels.csv").write_text(f"id,label\n{NFC_CAFE},cats\n{other},dogs\n")
    note = (
        f"1 id is in {root}/predict_labels.csv but for the Unicode form, which prints alike (e.g. "
        f"'{NFD_CAFE}': NFD in the file names, NFC in {root}/predict_labels.csv): write both"
    )
    if all_of_them:
        with pytest.raises(UserError, match=re.escape(note)):
            validate(params_for(root))
    else:
        validate(params_for(root))
        assert note in capsys.readouterr().out


def test_labels_that_are_class_names_in_another_unicode_form_are_named_as_such(
    tmp_path: Path, params_for
) -> None:
    counts = {f"train/{NFD_CAFE}": 4, "train/dogs": 4, f"test/{NFD_CAFE}": 1, "test/dogs": 1}
    root = write_data_set(tmp_path / "photos", {**counts, "predict": 2})
    (root / "predict_labels.csv").write_text(f"id,label\npicture_10,{NFC_CAFE}\npicture_11,x\n")
    with pytest.raises(UserError) as raised:
        validate(params_for(root))
    assert (
        f"1 label is in the class folders' names but for the Unicode form, which prints alike "
        f"(e.g. '{NFC_CAFE}': NFC in {root}/predict_labels.csv, NFD in the class folders' names)"
    ) in str(raised.value)
