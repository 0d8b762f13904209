"""The export stage: the submitted model as ONNX, checked against PyTorch on the test images,
the same bytes wherever and however often it runs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch

from imgclf import paths
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.evaluate import ensemble_of, ensemble_weights, load_trained, predict
from imgclf.models import mean_probability_logits
from imgclf.onnx_export import agreed_decimals, model_card, onnx_bytes, verify
from imgclf.samples import load_split_data
from tests.conftest import read_json, run


@pytest.mark.slow
def test_the_submitted_model_is_exported_with_its_card(repro_project: Path) -> None:
    submitted = read_json(repro_project / "metrics/submission.json")["submission"]["model"]
    exported = read_json(repro_project / "metrics/export.json")["export"]
    assert exported["model"] == submitted
    assert exported["agreement"] == 1.0 and exported["test_images"] == 270
    assert exported["prob_agreement_decimals"] >= 4
    measured = read_json(repro_project / "metrics/timing/export.json")["export"]
    assert measured["max_prob_diff"] < 10.0 ** -exported["prob_agreement_decimals"]

    folder = repro_project / "models/export"
    assert sorted(p.name for p in folder.iterdir()) == [f"{submitted}.json", f"{submitted}.onnx"]
    card = read_json(folder / f"{submitted}.json")
    checkpoint = load_trained(repro_project / f"models/{submitted}.pt").meta
    assert card["classes"] == checkpoint["classes"] == [str(d) for d in range(10)]
    assert card["image_size"] == 16 and card["input"]["shape"] == ["batch", 3, 16, 16]
    assert card["code_sha256"] == checkpoint["provenance"]["code_sha256"]
    evaluated = read_json(repro_project / "metrics/evaluate.json")[submitted]
    assert card["test_acc"] == exported["test_acc"] == evaluated["test_acc"]


@pytest.mark.slow
def test_two_exports_in_two_folders_give_the_same_bytes(
    repro_project: Path, tmp_path: Path
) -> None:
    """The exporter notes each node's Python source path; a copy elsewhere must not differ."""
    copy = tmp_path / "elsewhere"
    shutil.copytree(repro_project, copy, symlinks=True, ignore=shutil.ignore_patterns(".dvc"))
    run([sys.executable, "-m", "stages.export"], copy, env={"PYTHONPATH": str(copy)})
    outputs = [
        *(p.relative_to(repro_project) for p in (repro_project / "models/export").iterdir()),
        Path("metrics/export.json"),
    ]
    for name in outputs:
        assert (copy / name).read_bytes() == (repro_project / name).read_bytes(), name


@pytest.mark.slow
def test_the_check_finds_an_export_that_predicts_otherwise(
    repro_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repro_project)
    params = load_params()
    trained = load_trained(Path("models/scratch.pt"))
    data = load_split_data(Path("data/prepared/manifest.csv"), Path("data/split.csv"))
    cache = ImageCache(Path("data/prepared/images.npy"))
    indices = data.indices("test")
    same = verify(onnx_bytes(trained.model, 16), trained, cache, indices, 64, params.train)
    assert same.disagreements == 0 and same.max_prob_diff < 1e-4

    other = load_trained(Path("models/scratch.pt")).model
    head = [m for m in other.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # each class's output moved to the next class: every answer changes
        head.weight.copy_(head.weight.roll(1, dims=0))
        head.bias.copy_(head.bias.roll(1, dims=0))
    changed = verify(onnx_bytes(other, 16), trained, cache, indices, 64, params.train)
    assert changed.disagreements == len(indices) and changed.max_prob_diff > 1e-2


@pytest.mark.slow
def test_the_check_compares_float32_where_evaluation_predicts_in_bf16(
    repro_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU, evaluate and the submission predict in bf16; the export's check still
    compares the checkpoint's float32 arithmetic with ONNX Runtime's."""
    monkeypatch.chdir(repro_project)
    monkeypatch.setattr("imgclf.evaluate.uses_bfloat16", lambda device: True)  # as on a GPU
    params = load_params()
    trained = load_trained(Path("models/transfer.pt"))
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache, indices = ImageCache(paths.CACHE), data.indices("test")
    in_bf16 = predict(trained, cache, indices, 64, tta_flip=False).softmax(1)
    in_float32 = predict(trained, cache, indices, 64, tta_flip=False, float32_on_cpu=True)
    assert (in_bf16 - in_float32.softmax(1)).abs().max() > 1e-3  # bf16 really was in use
    check = verify(onnx_bytes(trained.model, 16), trained, cache, indices, 64, params.train)
    assert check.max_prob_diff < 1e-4


@pytest.mark.parametrize(
    ("difference", "decimals"),
    [(4.04e-7, 6), (1e-6, 5), (9.99e-5, 4), (0.03, 1), (1.0, 0), (0.0, 9), (1e-12, 9)],
)
def test_the_recorded_agreement_is_the_decimals_below_the_difference(
    difference: float, decimals: int
) -> None:
    assert agreed_decimals(difference) == decimals


@pytest.mark.slow
def test_an_ensemble_exports_as_one_file_that_agrees(
    repro_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submission.model: ensemble exports both models in one graph, the weighted mean of
    their probabilities (the weights fitted on validation), with a card that describes each
    member and the weights."""
    monkeypatch.chdir(repro_project)
    params = load_params()
    members = {name: load_trained(paths.checkpoint(name)) for name in paths.MODEL_NAMES}
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache, indices = ImageCache(paths.CACHE), data.indices("test")
    fitted = params.evaluate.model_copy(update={"ensemble_weights": "fitted"})
    weights = ensemble_weights(members, fitted, data, cache)
    assert sum(weights) == pytest.approx(1) and all((20 * w).is_integer() for w in weights)
    ensemble = ensemble_of(members, weights)
    exported = onnx_bytes(ensemble.model, 16)
    check = verify(exported, ensemble, cache, indices, 64, params.train)
    assert check.disagreements == 0 and check.max_prob_diff < 1e-4
    separately = mean_probability_logits(
        [predict(each, cache, indices, 64, tta_flip=False) for each in members.values()], weights
    )
    assert (check.predicted == separately.argmax(1).numpy()).all()
    card = model_card("ensemble", ensemble, 16, 0.5, params.train)
    assert card["weights"] == dict(zip(paths.MODEL_NAMES, weights, strict=True))
    assert set(card["members"]) == {"scratch", "transfer"}
    assert card["members"]["transfer"]["arch"] == "efficientnet_lite0"
