"""Reproducible to the bit, resumable after a crash, exact about what a change reruns:
real `dvc repro` and `dvc status` in temporary git + DVC copies of the project."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from imgclf import paths, train
from imgclf.checkpoint import weights_digest
from tests.conftest import SMALL_DEMO, make_project, read_json, run, run_stage, split_the_data

pytestmark = pytest.mark.slow


def test_checkpoints_and_records_say_where_they_came_from(repro_project: Path) -> None:
    evaluated = read_json(repro_project / "metrics/provenance/evaluate.json")
    for model in ("scratch", "transfer"):
        state = torch.load(
            repro_project / f"models/{model}.pt", map_location="cpu", weights_only=False
        )
        provenance = state["provenance"]
        assert provenance["params"]["train"]["lr"] == 0.002
        assert len(provenance["data_sha256"]) == len(provenance["code_sha256"]) == 64
        assert provenance["versions"]["torch"] == torch.__version__
        digest = weights_digest(state["model"])
        trained = read_json(repro_project / f"metrics/provenance/train_{model}.json")[model]
        assert trained["weights_sha256"] == evaluated[model]["weights_sha256"] == digest
        assert trained["kept_epoch"] == evaluated[model]["checkpoint_epoch"] == state["epoch"]
        assert trained["code_sha256"] == provenance["code_sha256"]


def changed_stages(project: Path) -> set[str]:
    """The stages `dvc status` marks, but validate, which runs at every repro."""
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    return {name.split(":")[-1] for name in status} - {"validate"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (["-S", "train.lr=0.001"], {"train_scratch", "train_transfer"}),
        # an ensemble's fitted weights depend on them, so the export reads them too
        (["-S", "evaluate.tta_flip=true"], {"evaluate", "make_submission", "export"}),
        (["-S", "evaluate.ensemble_weights=fitted"], {"evaluate", "make_submission", "export"}),
        (["-S", "submission.id_column=image"], {"make_submission"}),
        (["-S", "submission.model=scratch"], {"make_submission", "export"}),
        # split keeps the copies that check's thresholds find in one split
        (["-S", "check.near_duplicate_bits=3"], {"check", "split"}),
        (["-S", "split.keep_copies_together=false"], {"split"}),
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


def test_a_checkpoint_of_other_parameters_is_set_aside_not_resumed(repro_copy: Path) -> None:
    # On a copy: the set-aside file stays behind, and the shared project must not keep it.
    metrics = repro_copy / "metrics/train_scratch.json"
    expected, expected_weights = read_json(metrics), scratch_weights(repro_copy)
    resume = repro_copy / "models/resume/scratch.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fingerprint": "another run", "progress": {"epoch": 1}}, resume)
    out = run(["dvc", "repro", "-f", "--no-run-cache", "train_scratch"], repro_copy).stdout
    assert "is from other parameters, data or code; moved to" in out
    assert "resuming" not in out
    assert (repro_copy / "models/resume/scratch.stale.pt").exists() and not resume.exists()
    assert read_json(metrics) == expected and scratch_weights(repro_copy) == expected_weights


def test_a_run_killed_after_a_checkpoint_resumes_and_ends_as_an_unbroken_one(tmp_path) -> None:
    # The whole recipe on: its moving average, mixup and Kornia's draws must resume exactly too.
    recipe = {
        "train.ema_decay": 0.99,
        "train.mixup": 0.2,
        "train.cutmix": 1.0,
        "train.select": "val_acc",
        "augment.policy": "trivialaugment",
    }
    project = make_project(tmp_path, **{"train.epochs": 6, **recipe})
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
    resuming = re.search(r"scratch: resuming from epoch (\d+)", out)
    assert resuming, out
    assert not checkpoint.exists()
    resumed = read_json(project / "metrics/train_scratch.json")["scratch"]
    resumed_weights = scratch_weights(project)
    timing = project / "metrics/timing/train_scratch.json"
    assert read_json(timing)["scratch"]["resumed_after_epoch"] == int(resuming[1])

    out = run(["dvc", "repro", "-f", "--no-run-cache", "train_scratch"], project).stdout
    assert "resuming" not in out
    assert read_json(timing)["scratch"]["resumed_after_epoch"] is None
    unbroken = read_json(project / "metrics/train_scratch.json")["scratch"]
    assert resumed["epochs_trained"] == unbroken["epochs_trained"] == 6
    assert resumed == unbroken
    assert scratch_weights(project) == resumed_weights


def scratch_weights(project: Path) -> str:
    state = torch.load(project / "models/scratch.pt", map_location="cpu", weights_only=False)
    return weights_digest(state["model"])


def test_a_streamed_run_resumed_after_its_first_epoch_ends_as_an_unbroken_one(
    workdir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A loader worker, and Kornia's draws from torch's global generator: the loader made
    # anew at the resumed epoch must leave that generator as the unbroken run's left it.
    workdir(
        **SMALL_DEMO,
        train__data_on_device=False,
        train__num_workers=1,
        scratch__width=8,
        augment__policy="trivialaugment",
    )
    split_the_data()
    epoch_one = Path("epoch_one.pt")
    save_resumable = train.save_resumable

    def save_and_keep_epoch_one(run: train.Run, progress: train.Progress) -> None:
        save_resumable(run, progress)
        if progress.epoch == 1:
            shutil.copy(paths.resume_checkpoint(run.name), epoch_one)

    monkeypatch.setattr(train, "save_resumable", save_and_keep_epoch_one)
    assert run_stage("train_scratch") == 0
    unbroken = paths.history("scratch").read_text(), scratch_weights(Path())

    shutil.copy(epoch_one, paths.resume_checkpoint("scratch"))
    capsys.readouterr()
    assert run_stage("train_scratch") == 0
    assert "scratch: resuming from epoch 1" in capsys.readouterr().out
    assert (paths.history("scratch").read_text(), scratch_weights(Path())) == unbroken
