"""Reproducible to the bit, resumable after a crash, exact about what a change reruns:
real `dvc repro` and `dvc status` in temporary git + DVC copies of the project."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from imgclf.evaluate import weights_digest
from tests.conftest import make_project, run

pytestmark = pytest.mark.slow

QUALITY_FILES = ["prepare", "check", "train_scratch", "train_transfer", "evaluate", "submission"]


def quality(metrics_file: Path) -> dict:
    """A metrics file without its timing and memory figures (under the key "timing")."""

    def strip(tree: dict) -> dict:
        return {k: strip(v) if isinstance(v, dict) else v for k, v in tree.items() if k != "timing"}

    return strip(json.loads(metrics_file.read_text()))


def results(project: Path) -> dict:
    """Every metric but timing and memory, and a digest of each model's weights."""
    found = {name: quality(project / f"metrics/{name}.json") for name in QUALITY_FILES}
    for model in ("scratch", "transfer"):
        state = torch.load(project / f"models/{model}.pt", map_location="cpu", weights_only=False)
        found[f"{model}_weights"] = weights_digest(state["model"])
    return found


def test_a_forced_rerun_gives_the_same_metrics_and_weights(repro_project: Path) -> None:
    first = results(repro_project)
    run(["dvc", "repro", "-f"], repro_project)
    assert results(repro_project) == first


def test_checkpoints_record_where_they_came_from(repro_project: Path) -> None:
    commit = run(["git", "rev-parse", "HEAD~0"], repro_project).stdout.strip()
    for model in ("scratch", "transfer"):
        state = torch.load(
            repro_project / f"models/{model}.pt", map_location="cpu", weights_only=False
        )
        provenance = state["provenance"]
        assert provenance["params"]["train"]["lr"] == 0.002
        assert len(provenance["data_sha256"]) == 64
        assert provenance["git_commit"] in (
            commit,
            run(["git", "rev-parse", "HEAD~1"], repro_project).stdout.strip(),
        )
        assert provenance["versions"]["torch"] == torch.__version__
    evaluated = json.loads((repro_project / "metrics/evaluate.json").read_text())
    for model in ("scratch", "transfer"):
        state = torch.load(
            repro_project / f"models/{model}.pt", map_location="cpu", weights_only=False
        )
        assert evaluated[model]["weights_sha256"] == weights_digest(state["model"])[:16]
        assert evaluated[model]["checkpoint_epoch"] == state["epoch"]


def changed_stages(project: Path) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    return {name.split(":")[-1] for name in status}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (["-S", "train.lr=0.001"], {"train_scratch", "train_transfer"}),
        (["-S", "evaluate.tta_flip=true"], {"evaluate", "make_submission"}),
        (["-S", "submission.id_column=image"], {"make_submission"}),
        (["-S", "check.near_duplicate_bits=3"], {"check"}),
    ],
)
def test_a_parameter_change_marks_exactly_the_stages_that_read_it(
    repro_project: Path, change: list[str], expected: set[str]
) -> None:
    key, value = change[1].split("=")
    section, leaf = key.split(".")
    params = repro_project / "params.yaml"
    original = params.read_text()
    lines = original.splitlines()
    inside = False
    for i, line in enumerate(lines):
        if not line.startswith(" "):
            inside = line.startswith(f"{section}:")
        elif inside and line.strip().startswith(f"{leaf}:"):
            lines[i] = f"  {leaf}: {value}"
    params.write_text("\n".join(lines) + "\n")
    try:
        assert changed_stages(repro_project) == expected
    finally:
        params.write_text(original)
    assert changed_stages(repro_project) == set()


def test_editing_the_models_module_marks_the_training_stages(repro_project: Path) -> None:
    module = repro_project / "imgclf/models/scratch.py"
    original = module.read_text()
    module.write_text(original + "\n# an edit\n")
    try:
        changed = changed_stages(repro_project)
    finally:
        module.write_text(original)
    assert {"train_scratch", "train_transfer"} <= changed
    assert not {"prepare", "split", "check"} & changed


def test_adding_an_image_marks_prepare(repro_project: Path) -> None:
    folder = repro_project / "data/demo/train/3"
    added = folder / "added.png"
    added.write_bytes(next(folder.iterdir()).read_bytes())
    try:
        changed = changed_stages(repro_project)
    finally:
        added.unlink()
    assert "prepare" in changed
    assert not {"split", "check", "train_scratch", "train_transfer", "evaluate"} & changed


def test_a_checkpoint_of_other_parameters_is_set_aside_not_resumed(repro_project: Path) -> None:
    expected = results(repro_project)
    resume = repro_project / "models/resume/scratch.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fingerprint": "another run", "progress": {"epoch": 1}}, resume)
    out = run(["dvc", "repro", "-f", "--no-run-cache", "train_scratch"], repro_project).stdout
    assert "is from other parameters, data or code; moved to" in out
    assert "resuming" not in out
    assert (repro_project / "models/resume/scratch.stale.pt").exists() and not resume.exists()
    assert results(repro_project)["train_scratch"] == expected["train_scratch"]


def test_a_run_killed_after_a_checkpoint_resumes_and_ends_as_an_unbroken_one(tmp_path) -> None:
    project = make_project(tmp_path, **{"train.epochs": 6})
    run(["dvc", "repro", "check"], project)
    checkpoint = project / "models/resume/scratch.pt"
    process = subprocess.Popen(
        ["dvc", "repro", "train_scratch"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # dvc and the stage, as a power cut would
    process.wait()
    assert checkpoint.exists(), "the run ended before its first checkpoint could be killed"

    out = run(["dvc", "repro", "train_scratch"], project).stdout
    assert "scratch: resuming from epoch" in out
    assert not checkpoint.exists()
    resumed = quality(project / "metrics/train_scratch.json")["scratch"]
    resumed_weights = scratch_weights(project)

    out = run(["dvc", "repro", "-f", "--no-run-cache", "train_scratch"], project).stdout
    assert "resuming" not in out
    unbroken = quality(project / "metrics/train_scratch.json")["scratch"]
    assert resumed["epochs_trained"] == unbroken["epochs_trained"] == 6
    assert resumed == unbroken
    assert scratch_weights(project) == resumed_weights


def scratch_weights(project: Path) -> str:
    state = torch.load(project / "models/scratch.pt", map_location="cpu", weights_only=False)
    return weights_digest(state["model"])
