"""The benchmark command runs end to end: tiny profile, demo data, real pipeline."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run

pytestmark = pytest.mark.slow


def test_the_benchmark_command_writes_its_table_and_a_submission_per_model(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    workspace_before = run(["git", "status", "--porcelain"], ROOT).stdout
    command = [sys.executable, "bench/run.py", "--data", "data/demo", "--profile", "tiny"]
    run([*command, "--out", str(out), "--work", str(work)], ROOT, timeout=900)
    report = (out / "results.md").read_text()
    assert "scratch (resnet, 16 px)" in report and "transfer (efficientnet_lite0, 16 px)" in report
    assert "Machine: " in report and "torch " in report and "ensemble:" in report
    for model in ("scratch", "transfer", "ensemble"):
        with open(out / f"submission-{model}.csv", newline="") as file:
            rows = list(csv.DictReader(file))
        assert len(rows) == 270 and rows[0]["id"].startswith("image_")
    assert run(["git", "status", "--porcelain"], ROOT).stdout == workspace_before

    ensemble = [sys.executable, "bench/ensemble.py", "--project", str(work / "project")]
    test_accuracy = {
        cells[1].strip(): float(cells[-2].strip().rstrip("%"))
        for cells in (line.split("|") for line in run(ensemble, ROOT).stdout.splitlines())
        if len(cells) > 2 and cells[-2].strip().endswith("%")
    }
    bound = test_accuracy.pop("either model right (no combination scores above it)")
    assert len(test_accuracy) == 6 and max(test_accuracy.values()) <= bound <= 100

    # Pooled over experiments: the submission runs trained nothing, so they add no model.
    listed = run(["dvc", "exp", "list", "--name-only"], work / "project").stdout.split()
    submissions = [name for name in listed if name.startswith("submit-")]
    assert len(submissions) == 2
    pooled = run([*ensemble, "--experiments", "tiny", *submissions], ROOT).stdout
    test_accuracy = {
        cells[1].strip(): float(cells[2].strip().rstrip("%"))
        for cells in (line.split("|") for line in pooled.splitlines())
        if len(cells) > 2 and cells[2].strip().endswith("%")
    }
    alone = {test_accuracy.pop(f"tiny {name}") for name in ("scratch", "transfer")}
    assert not any(label.startswith("submit-") for label in test_accuracy)
    assert max(alone) <= test_accuracy["at least one model right"] <= 100
    assert "Wrong by every model: " in pooled
