"""train.precision: training steps and validation in bf16 mixed precision, or float32."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from bench.machine import describe
from imgclf import paths
from imgclf.predict import loss_and_accuracy
from imgclf.runtime import cpu_computes_bf16_natively, uses_bfloat16
from imgclf.samples import load_split_data
from imgclf.train import emulated_bfloat16, prepare_run, train_step, training_input
from tests.conftest import ROOT, pretend_cpu_bf16, split_the_data

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("precision", "logits_dtype"), [("bfloat16", torch.bfloat16), ("float32", torch.float32)]
)
def test_a_training_step_computes_in_the_precision_asked_for(
    workdir, make_params, precision: str, logits_dtype: torch.dtype
) -> None:
    workdir(data__root=str(ROOT / "data/demo"), data__image_size=16, split__max_train_per_class=8)
    split_the_data()
    params = make_params(train__precision=precision, train__batch_size=16, scratch__width=8)
    run = prepare_run("scratch", params, load_split_data(paths.MANIFEST, paths.SPLIT), CPU)
    images, targets = next(run.train_batches.epoch(1))
    inputs = training_input(images, params.augment, torch.Generator().manual_seed(0), 16)
    before = [p.detach().clone() for p in run.model.parameters()]

    loss, logits = train_step(run, run.model, inputs, targets, step=0)

    assert logits.dtype == logits_dtype
    assert torch.isfinite(loss).item()
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # master weights
    assert any(not torch.equal(b, p) for b, p in zip(before, run.model.parameters(), strict=True))
    val_loss, val_acc = loss_and_accuracy(run.model, run.val_batches.epoch(1), CPU, run.bfloat16)
    assert val_loss > 0 and 0 <= val_acc <= 1


def test_a_models_own_precision_overrides_the_shared_one(workdir, make_params) -> None:
    workdir(data__root=str(ROOT / "data/demo"), data__image_size=16, split__max_train_per_class=8)
    split_the_data()
    data = load_split_data(paths.MANIFEST, paths.SPLIT)

    def scratch_in_bf16(**changes: str) -> bool:
        params = make_params(scratch__width=8, **changes)
        return prepare_run("scratch", params, data, CPU).bfloat16

    assert scratch_in_bf16(train__precision="bfloat16")
    assert scratch_in_bf16(train__precision="bfloat16", transfer__precision="float32")
    assert not scratch_in_bf16(train__precision="bfloat16", scratch__precision="float32")
    assert scratch_in_bf16(train__precision="float32", scratch__precision="bfloat16")


def test_bf16_on_a_cpu_that_can_only_emulate_it_is_told_naming_the_key_that_asked(
    workdir, make_params, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir(data__root=str(ROOT / "data/demo"), data__image_size=16, split__max_train_per_class=8)
    split_the_data()
    data = load_split_data(paths.MANIFEST, paths.SPLIT)

    def warning(native: bool, **changes: str | bool) -> str | None:
        pretend_cpu_bf16(monkeypatch, native)
        return emulated_bfloat16(
            prepare_run("scratch", make_params(scratch__width=8, **changes), data, CPU)
        )

    told = warning(False, train__precision="bfloat16")
    assert told is not None and told.startswith("train.precision is bfloat16, which this CPU")
    assert told.endswith("set train.precision to auto or float32")
    told = warning(False, train__precision="float32", scratch__precision="bfloat16")
    assert told is not None and told.endswith("set scratch.precision to auto or float32")
    assert warning(True, train__precision="bfloat16") is None
    assert warning(False, train__precision="float32") is None
    assert warning(False, train__precision="auto", train__deterministic=False) is None
    assert warning(True, train__precision="auto", train__deterministic=False) is None


def test_auto_keeps_float32_where_results_must_be_the_same_everywhere() -> None:
    # Native bf16 units differ between CPUs, so deterministic runs never use them.
    assert not uses_bfloat16(CPU, "auto", deterministic=True)
    assert uses_bfloat16(CPU, "bfloat16", deterministic=True)
    assert not uses_bfloat16(torch.device("cuda"), "float32", deterministic=False)
    assert uses_bfloat16(torch.device("cuda"), "auto", deterministic=True)


def test_auto_trains_in_bf16_exactly_on_cpus_whose_flags_name_amx_or_avx512_bf16() -> None:
    flags = re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    native = bool({"amx_tile", "avx512_bf16"} & set(flags.group(1).split()))
    assert cpu_computes_bf16_natively() == native
    assert uses_bfloat16(CPU, "auto", deterministic=False) == native
    assert ("(native bf16)" if native else "(no native bf16)") in describe()
