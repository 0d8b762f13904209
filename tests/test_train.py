"""Training that goes wrong stops with a message and keeps no result of the failed run."""

from __future__ import annotations

import pytest

from imgclf import paths
from tests.conftest import SMALL_DEMO, pretend_cpu_bf16, run_stage, split_the_data

pytestmark = pytest.mark.slow  # each runs prepare, split and a training stage


def test_a_run_whose_loss_diverges_stops_with_a_message_and_writes_no_outputs(
    workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir(
        **SMALL_DEMO,
        train__lr=10,  # far too high: the loss is not a number within the first epoch
        train__optimizer="sgd",
        scratch__arch="original",
    )
    split_the_data(capsys)
    assert run_stage("train_scratch") == 1
    error = capsys.readouterr().err
    assert "error: train_scratch: training diverged in epoch 1 (" in error
    assert "lower train.lr or scratch.lr_mult" in error
    outputs = [
        paths.checkpoint("scratch"),
        paths.train_metrics("scratch"),
        paths.history("scratch"),
        paths.provenance("train_scratch"),
        paths.PLOTS / "learning_curves_scratch.png",
    ]
    assert [path for path in outputs if path.exists()] == []


def test_a_kept_model_no_better_than_guessing_is_told(
    workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir(**(SMALL_DEMO | {"train__epochs": 1}), train__lr=1e-9, scratch__arch="original")
    split_the_data(capsys)
    assert run_stage("train_scratch") == 0
    printed = capsys.readouterr().out
    assert "warning: train_scratch: the kept model (val acc 0." in printed
    assert "the learning rate (train.lr 1e-09 times scratch.lr_mult" in printed


def test_a_stage_told_to_train_in_bf16_on_a_cpu_that_can_only_emulate_it_says_so_and_trains(
    workdir, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir(**(SMALL_DEMO | {"train__epochs": 1}), train__precision="bfloat16", scratch__width=8)
    split_the_data(capsys)
    pretend_cpu_bf16(monkeypatch, native=False)
    assert run_stage("train_scratch") == 0
    printed = capsys.readouterr().out
    assert "warning: train_scratch: train.precision is bfloat16, which this CPU can only" in printed
    assert paths.checkpoint("scratch").exists()
