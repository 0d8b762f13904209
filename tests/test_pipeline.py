"""The mission's commands, for real, on the demo data in a temporary git + DVC repository."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import run

STAGES = [
    "validate",
    "prepare",
    "split",
    "check",
    "train_scratch",
    "train_transfer",
    "evaluate",
    "make_submission",
    "export",
]

pytestmark = pytest.mark.slow


def test_repro_then_experiment_then_review_commands(
    first_repro: tuple[Path, str], repro_copy: Path
) -> None:
    printed, project = first_repro[1], repro_copy  # the shared first run, on a copy to change
    for stage in STAGES:
        assert f"Running stage '{stage}'" in printed, stage
    # Each stage ends with a sentence that says what it did and where the results went.
    with (project / "data/split.csv").open() as f:
        counts = Counter(row["split"] for row in csv.DictReader(f))
    assert counts["train"] == 400  # tiny settings: max_train_per_class 40
    assert (
        f"split: 400 images to train on, {counts['val']} to validate and {counts['test']} to "
        f"test, {counts['predict']} to predict; in data/split.csv"
    ) in printed
    for model in ("scratch", "transfer"):
        kept = re.search(
            rf"train_{model}: kept epoch (\d) of 2 \(val loss [\d.]+, val acc", printed
        )
        assert kept, printed
        assert f"wrote models/{model}.pt, metrics/train_{model}.json" in printed
    # The pretrained model learns in two epochs (the scratch one, at 16 px, may not; it is
    # then told as test_train tests).
    assert "warning: train_transfer" not in printed
    evaluated = json.loads((project / "metrics/evaluate.json").read_text())
    for model in ("scratch", "transfer", "ensemble"):
        assert 0.0 <= evaluated[model]["test_acc"] <= 1.0
        assert evaluated[model]["test_f1"] <= 1.0
    with open(project / "data/submission.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 270 and set(rows[0]) == {"id", "label"}
    assert {row["label"] for row in rows} <= {str(digit) for digit in range(10)}

    again = run(["dvc", "repro"], project)
    assert again.stdout.count("Running stage") == 1, again.stdout  # validate runs every time
    assert "Running stage 'validate'" in again.stdout
    assert run(["git", "status", "--porcelain"], project).stdout == ""  # committed as it ran

    run(["dvc", "exp", "run", "-n", "small-lr", "-S", "train.lr=1e-5"], project)
    # The experiment's results are in the workspace: what the stages actually used.
    for model in ("scratch", "transfer"):
        record = json.loads((project / f"metrics/provenance/train_{model}.json").read_text())
        assert record[model]["lr"] == 1e-05 and isinstance(record[model]["lr"], float)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    names = [exp.get("name") for rev in shown for exp in rev.get("experiments") or []]
    assert "small-lr" in names, shown
    table = run(["dvc", "exp", "show", "--md"], project).stdout
    assert "small-lr" in table

    diff = run(["dvc", "metrics", "diff", "--md"], project).stdout
    assert "metrics/train_scratch.json" in diff and "val_loss" in diff

    plots = run(["dvc", "plots", "diff", "-o", "review_plots"], project)
    page = project / "review_plots" / "index.html"
    assert page.exists(), plots.stdout
    html = page.read_text()
    for name in (
        "loss",
        "accuracy",
        "confusion_scratch",
        "confusion_transfer",
        "confusion_ensemble",
    ):
        assert name in html, name
