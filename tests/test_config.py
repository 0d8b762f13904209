"""params.yaml: YAML 1.2 numbers, and one message naming the key for every bad value."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from imgclf.config import SCRATCH_ARCHS, TRANSFER_ARCHS, Params, load_params
from imgclf.errors import UserError
from imgclf.models.scratch import SCRATCH_ARCHS as SCRATCH_REGISTRY
from imgclf.models.transfer import BACKBONES
from imgclf.runtime import process_group
from tests.conftest import ROOT, write_params


def params_file(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "params.yaml"
    write_params(ROOT / "params.yaml", path, {k.replace("__", "."): v for k, v in changes.items()})
    return path


def test_the_projects_params_yaml_is_valid() -> None:
    assert load_params(ROOT / "params.yaml").train.lr > 0


def test_an_exponent_as_dvc_writes_it_back_is_a_number(tmp_path: Path) -> None:
    path = params_file(tmp_path)
    path.write_text(path.read_text().replace("lr: 0.002", "lr: 1e-05"))
    assert "lr: 1e-05" in path.read_text()
    assert load_params(path).train.lr == 1e-05


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"train__lrr": 0.1}, "train.lrr", "unknown key"),
        ({"train__mixup": 0.2, "train__batch_size": 63}, "train.mixup", "must be even, not 63"),
        ({"transfer__arch": "vgg16", "data__image_size": 16}, "data.image_size", "at least 32"),
        ({"transfer__arch": "convnext_tiny", "transfer__input_size": 24}, "input_size", "32"),
        ({"train__batch_size": "abc"}, "train.batch_size", "integer"),
        ({"train__batch_size": 0}, "train.batch_size", "greater than 0"),
        ({"train__lr": -0.1}, "train.lr", "greater than 0"),
        ({"train__lr": 0}, "train.lr", "greater than 0"),
        ({"split__test_fraction": 1.0}, "split.test_fraction", "less than 1"),
        ({"scratch__dropout": 1.0}, "scratch.dropout", "less than 1"),
        ({"scratch__arch": "resnet9000"}, "scratch.arch", "known: original, resnet"),
        ({"transfer__arch": "vgg17"}, "transfer.arch", "efficientnet_lite0"),
        ({"check__fail_on_leakage": "maybe"}, "check.fail_on_leakage", "boolean"),
        ({"scratch__input_size": "none"}, "scratch.input_size", "-S scratch.input_size=null"),
        ({"data__test_dir": "train/"}, "data.test_dir", "are both 'train'"),
        ({"data__predict_dir": ""}, "data.predict_dir", "is empty, which is data.root itself"),
        ({"data__val_dir": "./train/val"}, "data.val_dir", "is inside data.train_dir (train)"),
        ({"data__train_dir": "seg/train", "data__test_dir": "seg"}, "data.train_dir", "inside"),
    ],
)
def test_a_bad_value_stops_with_the_key_named(
    tmp_path: Path, change: dict, key: str, words: str
) -> None:
    with pytest.raises(UserError) as raised:
        load_params(params_file(tmp_path, **change))
    message = str(raised.value)
    assert key in message and words in message, message


def test_an_empty_value_as_dvc_writes_it_is_an_empty_key(tmp_path: Path) -> None:
    # `dvc exp run -S transfer.precision=` writes '', where params.yaml leaves a key empty.
    path = params_file(tmp_path, transfer__precision="", submission__labels_file="")
    assert "precision: ''" in path.read_text()
    params = load_params(path)
    assert params.transfer.precision is None and params.submission.labels_file is None
    with pytest.raises(UserError, match=r"train\.precision"):  # a key that may not be empty
        load_params(params_file(tmp_path, train__precision=""))


def test_an_unknown_architecture_is_the_one_error_about_it(tmp_path: Path) -> None:
    with pytest.raises(UserError) as raised:
        load_params(params_file(tmp_path, transfer__arch="nope", transfer__weights="w.pt"))
    assert "transfer.arch: unknown architecture 'nope'" in str(raised.value)
    assert "transfer.weights" not in str(raised.value)


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(re.sub(r"\n  patience:[^\n]*", "", text))
    with pytest.raises(UserError, match=r"train\.patience: missing"):
        load_params(tmp_path / "params.yaml")


def test_fractions_that_leave_no_training_data_are_refused(tmp_path: Path) -> None:
    path = params_file(tmp_path, split__val_fraction=0.5, split__test_fraction=0.5)
    with pytest.raises(UserError, match=r"split\.val_fraction"):
        load_params(path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match=r"params\.yaml is not valid YAML"):
        load_params(path)


def test_the_architecture_names_match_the_model_registries() -> None:
    assert set(SCRATCH_ARCHS) == set(SCRATCH_REGISTRY)
    assert set(TRANSFER_ARCHS) == set(BACKBONES)


def test_split_folders_nested_apart_are_accepted(tmp_path: Path) -> None:
    folders = {"train_dir": "seg_train/seg_train", "test_dir": "seg_test/seg_test"}
    path = params_file(tmp_path, **{f"data__{key}": value for key, value in folders.items()})
    assert load_params(path).data.train_dir == "seg_train/seg_train"


def test_on_several_hosts_all_their_processes_must_share_the_batch(
    monkeypatch: pytest.MonkeyPatch, make_params: Callable[..., Params]
) -> None:
    """The config sees train.nproc, the processes on one host; the world size is known once
    torchrun has started them (2 hosts x 2 processes here), and checked before they join."""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("WORLD_SIZE", "4")
    params = make_params(train__batch_size=66, train__device="cpu")
    with (
        pytest.raises(UserError, match=r"train.batch_size \(66\) is the batch of all processes "),
        process_group(params.train),
    ):
        pass
