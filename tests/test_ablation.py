"""The ablation and variant benchmark: which runs it plans, its table, and the command end to
end on the demo data with the tiny profile (real DVC, real training)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ablation
from bench.ablation import planned_runs, results_table, variant
from tests.conftest import ONE_THREAD, ROOT, run, set_options

DEFAULTS = {"seed": 0, "train.epochs": 8, "train.weight_decay": 0.0005, "scratch.width": 16}


def test_each_run_is_the_profile_with_its_own_change_and_no_other() -> None:
    profile = {"train.epochs": 30}
    changes = [variant("train.weight_decay=0.05"), variant("scratch.width=40,train.epochs=45")]
    plan = planned_runs(profile, DEFAULTS, changes, second_seed=1)
    assert [label for label, _ in plan] == [
        "the profile",
        "with train.weight_decay=0.05",
        "with scratch.width=40,train.epochs=45",
        "the profile, seed 1",
    ]
    assert plan[0][1] == profile
    assert plan[1][1] == profile | {"train.weight_decay": 0.05}
    assert plan[2][1] == profile | {"scratch.width": 40, "train.epochs": 45}
    assert plan[3][1] == profile | {"seed": 1}


def test_an_ingredient_the_profile_leaves_off_gets_no_run() -> None:
    changes = [("without decay", {"train.weight_decay": 0.0}), variant("scratch.width=40")]
    plan = planned_runs({"train.weight_decay": 0.0}, DEFAULTS, changes, second_seed=1)
    assert [label for label, _ in plan] == [
        "the profile",
        "with scratch.width=40",
        "the profile, seed 1",
    ]


def test_a_variant_reads_its_values_as_yaml() -> None:
    assert variant("train.deterministic=false,scratch.input_size=null") == (
        "with train.deterministic=false,scratch.input_size=null",
        {"train.deterministic": False, "scratch.input_size": None},
    )


def test_the_table_gives_each_change_against_the_first_run() -> None:
    runs = [
        ("the profile", 3.0, {"scratch": 90.0, "transfer": 94.0, "ensemble": 94.5}),
        ("with x=1", 1.25, {"scratch": 91.5, "transfer": 94.0, "ensemble": 93.75}),
    ]
    rows = results_table(runs).splitlines()[2:]
    assert rows[0] == "| the profile | 3.0 | 90.00 % (+0.00) | 94.00 % (+0.00) | 94.50 % (+0.00) |"
    assert rows[1] == "| with x=1 | 1.2 | 91.50 % (+1.50) | 94.00 % (+0.00) | 93.75 % (-0.75) |"


@pytest.mark.parametrize("option", ["--variant", "--set"])
def test_an_unknown_key_stops_the_command_before_any_run(option: str, tmp_path: Path) -> None:
    command = [sys.executable, "bench/ablation.py", "--data", "data/demo", "--profile", "tiny"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path), option, "train.lrr=0.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "not keys of params.yaml: train.lrr" in result.stderr
    assert not (tmp_path / "ablation.md").exists()


@pytest.mark.slow
def test_the_variant_command_keeps_a_row_per_finished_run_when_a_later_one_fails(
    tmp_path: Path,
) -> None:
    workspace_before = run(["git", "status", "--porcelain"], ROOT).stdout
    command = [sys.executable, "bench/ablation.py", "--data", "data/demo", "--profile", "tiny"]
    command += set_options({"split.max_train_per_class": 10, **ONE_THREAD})  # tiny takes 20
    # The first variant reruns make_submission alone (seconds); the second fails validation.
    variants = ["--variant", "submission.labels_file=null", "--variant", "train.lr=-1"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path), *variants],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "the run 'with train.lr=-1' failed" in result.stderr
    assert "split: 100 images to train on" in result.stdout  # ten classes of the demo
    assert "holds the 2 runs before it" in result.stderr
    report = (tmp_path / "ablation.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| the") or "| with" in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| the profile",
        "| with submission.labels_file=null",
    ]
    assert rows[0].count("(+0.00)") == 3
    assert "Machine: " in report and "--variant train.lr=-1" in report
    assert run(["git", "status", "--porcelain"], ROOT).stdout == workspace_before


@pytest.mark.slow
def test_without_dvc_each_run_is_the_whole_pipeline_by_its_commands(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).parent)  # where dvc is installed: out of reach
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    command = [sys.executable, "bench/ablation.py", "--without-dvc", "--data", "data/demo"]
    command += ["--profile", "tiny", *set_options({"split.max_train_per_class": 10, **ONE_THREAD})]
    result = subprocess.run(
        [*command, "--out", str(tmp_path), "--variant", "train.lr=-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": path},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "the run 'with train.lr=-1' failed (its stages exited 1" in result.stderr
    assert result.stdout.count("Running stage 'prepare'") == 1  # the failed run stopped first
    report = (tmp_path / "ablation.md").read_text()
    assert "every stage run by its command" in report
    assert re.search(r"\| the profile \| [\d.]+ \| \d+\.\d\d % \(\+0\.00\) \|", report), report


def test_the_report_says_how_many_runs_are_done_until_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped (Ctrl-C) during its third run of four, the report must not look complete.
    monkeypatch.setattr(ablation, "data_view", lambda data, view: data)
    monkeypatch.setattr(ablation, "copy_project", lambda project, params, repository: project)
    tested = {"scratch": 90.0, "transfer": 94.0, "ensemble": 95.0}
    monkeypatch.setattr(ablation, "accuracies", lambda project: tested)
    stop_at = ["ablation-2"]

    class Pipeline:
        def __init__(self, project: Path, without_dvc: bool) -> None:
            pass

        def run(self, name: str, settings: dict) -> tuple[float, float]:
            if name in stop_at:
                raise KeyboardInterrupt
            return 0.0, 0.0

    monkeypatch.setattr(ablation, "Pipeline", Pipeline)
    command = ["bench/ablation.py", "--data", str(ROOT / "data/demo"), "--profile", "tiny"]
    command += ["--out", str(tmp_path), "--variant", "train.lr=0.1", "--variant", "train.lr=0.2"]
    monkeypatch.setattr(sys, "argv", command)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        ablation.main()
    report = (tmp_path / "ablation.md").read_text()
    assert report.count("| with train.lr=0.1 |") == 1 and "| with train.lr=0.2 |" not in report
    assert "2 of 4 runs done" in report.split("| run |")[0]
    stop_at.clear()
    ablation.main()
    report = (tmp_path / "ablation.md").read_text()
    assert "| the profile, seed 1 |" in report and "runs done" not in report
