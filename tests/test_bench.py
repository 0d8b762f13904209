"""The benchmark command runs end to end: tiny profile, demo data, real pipeline."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

import psutil
import pytest
import torch

from bench import run as bench_run
from bench.ensemble import ORACLE_ROW, accuracy, combination_rules
from bench.ensemble import main as ensemble_main
from bench.machine import describe
from bench.resolution import main as resolution_main
from bench.run import Pipeline, model_row, original_settings, remove_abandoned
from bench.run import main as run_main
from bench.seeds import row as seeds_row
from bench.throughput import WARMUP, bound_rate, endless, heading, warmup_steps
from bench.workspace import load_profile
from imgclf import checkpoint, paths
from imgclf.config import read_yaml
from imgclf.samples import load_split_data
from imgclf.train import prepare_run
from tests.conftest import ONE_THREAD, ROOT, make_project, run, set_options, split_the_data


def test_stacking_learns_which_model_to_trust_for_which_class() -> None:
    # Each model is sure of every image, right on two classes of three and wrong on the
    # third, where the other is right: any average sides with the wrong one there.
    targets = torch.arange(90) % 3
    right = torch.nn.functional.one_hot(targets, 3).float() * 5
    wrong = right.roll(1, dims=1)
    first = torch.where((targets == 2)[:, None], wrong, right)
    second = torch.where((targets == 0)[:, None], wrong, right)
    logits = {"scratch": first, "transfer": second}
    rules = combination_rules(logits, targets)
    assert accuracy(rules["mean of probabilities"][1](logits), targets) < 0.8
    stacked = rules["stacking: logistic regression on both log-probabilities"][1]
    assert accuracy(stacked(logits), targets) == 1.0


@pytest.mark.slow
def test_the_benchmark_command_writes_its_table_and_a_submission_per_model(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "submission-earlier.csv").write_text("an earlier run's file\n")
    workspace_before = run(["git", "status", "--porcelain"], ROOT).stdout
    command = [sys.executable, "bench/run.py", "--data", "data/demo", "--profile", "tiny"]
    command += set_options(ONE_THREAD)
    run([*command, "--out", str(out), "--work", str(work)], ROOT, timeout=900)
    report = (out / "results.md").read_text()
    # OUT is this run's output alone, its parameters beside the report, which says what ran.
    assert sorted(path.name for path in out.iterdir()) == [
        "params.yaml",
        "results.md",
        *(f"submission-{model}.csv" for model in ("ensemble", "scratch", "transfer")),
    ]
    assert read_yaml(out / "params.yaml")["data"]["image_size"] == 16
    assert "its parameters as the run used them are in `params.yaml`" in report
    assert "Project: commit " in report and "Submitted (submission.model: auto): the " in report
    assert " 0.0 min " not in report
    for model in ("scratch (resnet, 16 px)", "transfer (efficientnet_lite0, 16 px)"):
        kept = re.search(
            rf"^\| {re.escape(model)} \|[^|]+\|[^|]+\| (\d+) of (\d+) \|", report, re.M
        )
        assert kept and 1 <= int(kept[1]) <= int(kept[2]), report  # the epoch kept, of those run
    assert "Machine: " in report and "torch " in report and "ensemble:" in report
    for model in ("scratch", "transfer", "ensemble"):
        with open(out / f"submission-{model}.csv", newline="") as file:
            rows = list(csv.DictReader(file))
        assert len(rows) == 270 and rows[0]["id"].startswith("image_")
    assert run(["git", "status", "--porcelain"], ROOT).stdout == workspace_before
    assert " with the other two submissions" in report
    assert "Whole pipeline (prepare to submission and the export): " in report

    ensemble = [sys.executable, "bench/ensemble.py", "--project", str(work / "project")]
    test_accuracy = {
        cells[1].strip(): float(cells[-2].strip().rstrip("%"))
        for cells in (line.split("|") for line in run(ensemble, ROOT).stdout.splitlines())
        if len(cells) > 2 and cells[-2].strip().endswith("%")
    }
    bound = test_accuracy.pop(ORACLE_ROW)
    alone = max(test_accuracy["scratch alone"], test_accuracy["transfer alone"])
    assert len(test_accuracy) == 7 and alone <= bound <= 100

    # At the size it trained at, a model scores what it scores in the ensemble's table.
    resolution = [sys.executable, "bench/resolution.py", "--project", str(work / "project")]
    table = run([*resolution, "--sizes", "transfer=24,16"], ROOT).stdout.splitlines()
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table[2:]]
    assert [cells[:2] for cells in rows] == [
        ["transfer", "24"],
        ["transfer", "16 (trained)"],
        ["transfer", "mean of 24, 16"],
    ]
    assert float(rows[1][3].rstrip("%")) == test_accuracy["transfer alone"]

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

    # Pooled over projects: a copy whose scratch model alone differs adds that model only.
    copy = work / "copy"
    shutil.copytree(work / "project", copy)
    state = checkpoint.load(copy / "models/scratch.pt")
    first_weight = next(key for key, value in state["model"].items() if value.is_floating_point())
    state["model"][first_weight] += 1.0
    checkpoint.save(copy / "models/scratch.pt", state)
    projects = [str(work / "project"), str(copy)]
    pooled = run([sys.executable, "bench/ensemble.py", "--projects", *projects], ROOT).stdout
    models = [line.split("|")[1].strip() for line in pooled.splitlines() if line.startswith("| ")]
    assert models[:4] == [
        "models",
        *(f"{projects[0]} {name}" for name in ("scratch", "transfer")),
        f"{copy} scratch",
    ]
    assert "mean of the 2 scratch models" in pooled and "mean of the 1 transfer models" in pooled

    # One model retrained at another seed: its row, as its metrics say; the other untouched.
    # (One seed: what a second adds, that it too starts from the kept parameters, is
    # `seeds.starting_params`' and Pipeline's own tests.)
    project = work / "project"
    transfer = (project / "models/transfer.pt").read_bytes()
    table = tmp_path / "seeds.md"
    seeds = [sys.executable, "bench/seeds.py", "--project", str(project), "--model", "scratch"]
    run([*seeds, "--seeds", "2", "--set", "scratch.dropout=0.3", "--out", str(table)], ROOT)
    rows = [line.split(" | ") for line in table.read_text().splitlines() if line[:3] == "| 2"]
    tested = json.loads((project / "metrics/evaluate.json").read_text())["scratch"]
    assert [cells[:2] for cells in rows] == [["| 2", "1 of 1"]]
    assert rows[-1][3] == f"{tested['test_acc']:.2%}"
    assert (project / "models/transfer.pt").read_bytes() == transfer
    assert read_yaml(project / "params.yaml")["seed"] == 2
    assert read_yaml(project / "params.yaml")["scratch"]["dropout"] == 0.3
    # Each seed starts from the profile's parameters kept beside the project, not from where
    # the last run left off (Pipeline's own test, below, shows the reset between runs).
    kept = work / "profile-params.yaml"
    assert kept.read_text() == (out / "params.yaml").read_text()
    starting = f"each seed starting from `{kept}` with these over it: `scratch.dropout=0.3`"
    assert starting in table.read_text()
    listed = run(["dvc", "exp", "list", "--name-only"], project).stdout.split()
    assert "scratch-seed2" in {name.rpartition("-")[0].rpartition("-")[0] for name in listed}


@pytest.mark.parametrize(
    ("command", "arguments", "message"),
    [
        (
            ensemble_main,
            ["--projects", ".", "--experiments", "x"],
            "--experiments pools experiments of one --project",
        ),
        (
            ensemble_main,
            ["--projects", ".", "nowhere/project"],
            "no such project folder: nowhere/project",
        ),
        (resolution_main, ["--sizes", "transfer=150"], "the following arguments are required"),
        (resolution_main, ["--project", ".", "--sizes", "teacher=150"], "one of scratch, transfer"),
        (resolution_main, ["--project", ".", "--sizes", "scratch=96,1x2"], "whole pixels"),
        (resolution_main, ["--project", "nowhere", "--sizes", "scratch=96"], "no such project"),
    ],
)
def test_bad_arguments_stop_the_command_with_a_message(
    command: Callable[[], None],
    arguments: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "argv", ["bench/command.py", *arguments])
    with pytest.raises(SystemExit) as stopped:
        command()
    assert stopped.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_the_averages_bench_trains_as_the_stage_trains(repro_project: Path, tmp_path: Path) -> None:
    # The tests' project trains without a moving average: the weights themselves (`none`)
    # must follow, epoch by epoch, what the stage recorded, and keep the epoch it kept, testing
    # as evaluate tested it. A slow average without warm-up is another model (8 steps at 0.999
    # keep 99 % of the first weights, the new head's random ones among them).
    out = tmp_path / "averages.md"
    averages = ["none", "0.999", "0.999:warmup"]
    command = ["bench/ema.py", "--project", str(repro_project), "--model", "transfer"]
    run([sys.executable, *command, "--averages", *averages, "--out", str(out)], ROOT)
    rows = [
        [cell.strip() for cell in line.split("|")[1:-1]] for line in out.read_text().splitlines()
    ]
    epochs = [cells for cells in rows if cells and cells[0].isdigit()]
    assert "\nParameters: the project's params.yaml.\n" in out.read_text()
    with open(repro_project / "plots/history/transfer.csv", newline="") as file:
        history = list(csv.DictReader(file))
    assert [cells[1].split(" / ")[0] for cells in epochs] == [
        f"{100 * float(row['val_acc']):.2f}" for row in history
    ]
    assert any(cells[2] != cells[1] for cells in epochs)
    kept = json.loads((repro_project / "metrics/train_transfer.json").read_text())["transfer"]
    tested = json.loads((repro_project / "metrics/evaluate.json").read_text())["transfer"]
    assert rows[-1][:2] == [
        "kept (val_loss)",
        f"epoch {kept['kept_epoch']}: {100 * tested['test_acc']:.2f}",
    ]


def test_the_averages_bench_stops_on_an_unknown_average(tmp_path: Path) -> None:
    command = [sys.executable, "bench/ema.py", "--project", str(tmp_path), "--out", "x.md"]
    result = run([*command, "--averages", "0.998:cold"], ROOT, check=False)
    assert (
        result.returncode == 2 and "'0.998:cold': give none, a decay D or D:warmup" in result.stderr
    )


def test_the_throughput_bench_times_steps_from_an_epoch_start(workdir, make_params) -> None:
    # The epoch's smaller last batch is a new shape, whose one-off autotuning (cuDNN's) must
    # not be timed as a step: 200 training images in batches of 64 end each epoch with 8.
    workdir(data__root=str(ROOT / "data/demo"), data__image_size=16, split__max_train_per_class=20)
    split_the_data()
    params = make_params(train__batch_size=64, split__max_train_per_class=20)
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    batches = prepare_run("scratch", params, data, torch.device("cpu")).train_batches
    drawn = endless(batches)
    untimed = [next(drawn) for _ in range(1 + warmup_steps(batches))]  # `first` included
    assert [len(images) for images, _ in untimed[:5]] == [64, 64, 64, 8, 64]
    assert len(untimed) % len(batches) == 0 and len(untimed) > WARMUP
    next_epoch = len(untimed) // len(batches) + 1
    assert torch.equal(next(drawn)[1], next(batches.epoch(next_epoch))[1])


def trained_as_the_stages_leave_it(
    project: Path,
    model: str,
    architecture: dict,
    train_s: float,
    resumed_after_epoch: int | None = None,
) -> None:
    """A checkpoint of `architecture` and the metrics files the reports read for `model`."""
    checkpoint.save(project / paths.checkpoint(model), {"architecture": architecture})
    timing = {"resumed_after_epoch": resumed_after_epoch, "train_s": train_s}
    written = {
        "evaluate": {model: {"test_acc": 0.5, "test_f1": 0.5}},
        f"train_{model}": {model: {"kept_epoch": 2, "epochs_trained": 3, "val_acc": 0.75}},
        f"timing/train_{model}": {model: {**timing, "images_per_s": 9, "peak_rss_mb": 1}},
    }
    for name, content in written.items():
        path = project / paths.METRICS / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def test_a_models_row_names_the_size_it_trained_at(tmp_path: Path) -> None:
    # A timm backbone trains at its weights' own size when transfer.input_size is empty.
    built = {"arch": "timm/resnet18.a1_in1k", "image_size": 224}
    trained_as_the_stages_leave_it(tmp_path, "transfer", built, train_s=60)
    assert model_row(tmp_path, "transfer")["model"] == "transfer (timm/resnet18.a1_in1k, 224 px)"


@pytest.mark.slow  # the prepare stage four times, twice by `dvc exp run`
@pytest.mark.parametrize("without_dvc", [False, True], ids=["dvc", "without-dvc"])
def test_each_run_of_a_pipeline_starts_from_its_start_parameters(
    tmp_path: Path, without_dvc: bool
) -> None:
    # `dvc exp run -S` leaves its settings in the workspace: one run's must not stay in force
    # in the next (real DVC, the prepare stage on the demo data).
    project = make_project(tmp_path)
    start = read_yaml(project / "params.yaml")
    pipeline = Pipeline(project, without_dvc)
    pipeline.rerun("dropout", {"scratch.dropout": 0.3}, "prepare")
    assert read_yaml(project / "params.yaml")["scratch"]["dropout"] == 0.3
    pipeline.rerun("seed", {"seed": 1}, "prepare")
    after = read_yaml(project / "params.yaml")
    assert after["scratch"]["dropout"] == start["scratch"]["dropout"] != 0.3
    assert after == start | {"seed": 1}


def test_the_original_row_trains_as_the_notebook_did_whatever_the_profile() -> None:
    # The row's run starts from params.yaml's defaults (each run of a Pipeline does): none of
    # the profile's recipe may be among its settings; its runtime, data and split are kept.
    profile = load_profile("cpu") | {"train.cpu_threads": 1, "data.train_dir": "seg/train"}
    settings = original_settings(profile)
    original = load_profile("original")
    recipe = (
        "augment.rotation",
        "augment.zoom",
        "train.ema_decay",
        "train.select",
        "scratch.width",
    )
    assert all(key in profile and key not in settings for key in recipe)
    assert settings | original == settings  # the notebook's own settings win
    kept = ("train.cpu_threads", "data.train_dir", "split.keep_copies_together")
    assert {key: settings[key] for key in kept} == {key: profile[key] for key in kept}


@pytest.mark.slow
def test_the_original_row_trains_the_notebooks_network_on_the_profiles_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real DVC and training; the notebook's settings shrunk to the demo at 16 px, one epoch.
    project = make_project(tmp_path)
    shrunk = {"data.image_size": 16, "train.epochs": 1, "split.max_train_per_class": 20}
    monkeypatch.setattr(bench_run, "load_profile", lambda name: load_profile(name) | shrunk)
    profile = load_profile("cpu") | ONE_THREAD  # train.deterministic: false, unlike the start
    row = bench_run.original_row(Pipeline(project, False), profile)
    # the size and batch it ran at: the profile's 16 px, the notebook's batch of 32
    assert row["model"] == "original notebook CNN (16 px, batch 32)"
    assert row["epoch kept"] == "1 of 1"
    assert 0 <= float(row["test accuracy"].rstrip("%")) <= 100
    ran = read_yaml(project / "params.yaml")
    assert ran["scratch"]["arch"] == "original" and ran["train"]["batch_size"] == 32
    assert ran["train"]["ema_decay"] == read_yaml(ROOT / "params.yaml")["train"]["ema_decay"]
    assert ran["train"]["cpu_threads"] == 1 and ran["train"]["deterministic"] is False
    assert checkpoint.load(project / paths.checkpoint("scratch"))["architecture"]["arch"] == (
        "original"
    )


def test_the_throughput_bound_is_timed_after_its_warm_up() -> None:
    # A step is slow until it has run WARMUP times (as compiling or autotuning makes the first
    # ones): none of those may be timed.
    calls = count()
    batch = (torch.zeros(10), torch.zeros(10))
    rate = bound_rate(lambda _: time.sleep(0.2 if next(calls) < WARMUP else 0.001), batch, 5)
    assert next(calls) == WARMUP + 5
    assert rate > 5 * 10 / 0.1  # one slow step timed would make it below 5 x 10 / 0.2


def test_the_throughput_heading_says_when_the_rows_compare_compiling() -> None:
    args = argparse.Namespace(profile="cpu", set=[], steps=20, compile=False)
    assert "torch.compile off (" in heading(args, None)
    assert "torch.compile off (" in heading(args, "train.precision")
    assert "torch.compile as each row says (" in heading(args, "train.compile")
    assert "torch.compile on (" in heading(
        argparse.Namespace(**{**vars(args), "compile": True}), None
    )


def test_the_augmentation_bench_counts_each_policys_host_work() -> None:
    command = [sys.executable, "bench/augment.py", "--batch", "8", "--batches", "2"]
    rows = [line.split("|")[1:-1] for line in run(command, ROOT).stdout.splitlines()]
    measured = {cells[0].strip(): cells[1:] for cells in rows if len(cells) == 3}
    keras, trivial = measured["keras"], measured["trivialaugment"]
    assert float(keras[0]) > 0 and 0 < float(keras[1]) < float(trivial[1])


def test_the_classify_bench_refuses_the_ensemble_before_running_the_pipeline() -> None:
    command = [sys.executable, "bench/classify.py", "--set", "submission.model=ensemble"]
    result = run(command, ROOT, check=False)
    assert result.returncode == 2
    assert "ensemble has no checkpoint to measure the export against" in result.stderr
    assert "Running stage" not in result.stdout


def stopped_run(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """bench/run.py's main in this process: its exit status and the lines of its stderr."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["bench/run.py", *arguments])
        with pytest.raises(SystemExit) as stopped:
            run_main()
    return stopped.value.code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--profile", "nosuch"], "no profile nosuch: give one of cpu, gpu, original, proxy, tiny"),
        (["--out", "{tmp}/a-file"], "--out {tmp}/a-file: {tmp}/a-file is a file"),
        (["--out", "{tmp}/a-file/out"], "--out {tmp}/a-file/out: {tmp}/a-file is a file"),
        (["--work", "{tmp}/used"], "--work {tmp}/used exists: give a new folder, or remove"),
        (["--set", "nosuch.key=1"], "--set: not keys of params.yaml: nosuch.key"),
        (["--set", "train.lrr=1"], "not keys of params.yaml: train.lrr (did you mean train.lr?)"),
        (["--set", "train.epochs"], "--set train.epochs: write KEY=VALUE"),
        (["--set", "train.lr=abc"], "train.lr: Input should be a valid number"),
        (["--data", "/nonexistent"], "--data /nonexistent does not exist: give a folder laid out"),
        (["--data", "{tmp}/a-file"], "--data {tmp}/a-file is a file: give a folder laid out as"),
        (["--data", "{tmp}/used"], "has no train/<class>/ folders: give a folder laid out as"),
    ],
)
def test_the_benchmark_command_stops_on_bad_input_with_one_line_before_copying(
    arguments: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "project").mkdir()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    given = dict(zip(arguments[::2], arguments[1::2], strict=True))
    options = {"--data": "data/demo", "--profile": "tiny", "--out": "{tmp}/out"} | given
    command = [word.format(tmp=tmp_path) for pair in options.items() for word in pair]
    command += ["--work", str(tmp_path / "work")] * ("--work" not in given)
    status, err = stopped_run(command, capsys)
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith("error: ") and message.format(tmp=tmp_path) in err[0], err
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()
    assert not any((tmp_path / "tmp").iterdir())  # nothing copied, not even the project


def test_a_failed_run_leaves_no_temporary_folder_and_says_which_command_failed(
    tmp_path: Path,
) -> None:
    # An image that cannot be decoded: the pipeline fails in a stage, after the project's copy.
    (tmp_path / "data" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "train" / "cat" / "broken.jpg").write_bytes(b"not a picture")
    (tmp_path / "tmp").mkdir()
    command = [sys.executable, "bench/run.py", "--without-dvc", "--profile", "tiny"]
    command += ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    result = run(command, ROOT, check=False, env={"TMPDIR": str(tmp_path / "tmp")})
    assert [path.name for path in (tmp_path / "tmp").iterdir()] == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "tmp"]
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: `"), result.stderr
    assert "Traceback" not in result.stderr


def start_tiny_run(out: Path, temp: Path) -> subprocess.Popen:
    """bench/run.py with the tiny profile on the demo data into `out`, in a session of its own,
    its temporary folders in `temp`; stderr piped."""
    command = [sys.executable, "bench/run.py", "--without-dvc", "--data", "data/demo"]
    command += ["--profile", "tiny", *set_options(ONE_THREAD), "--out", str(out)]
    # Started with SIGINT handled here, so that it starts with SIGINT at its default even where
    # the tests run with it ignored (a script's `make test &` ignores it; children inherit that).
    ignored_or_not = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(temp)},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, ignored_or_not)


def wait_while_running(process: subprocess.Popen, condition: Callable[[], bool]) -> None:
    """Until `condition` holds; fails if the process ends first or 10 minutes pass."""
    deadline = time.monotonic() + 600
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "status", "written"),
    [
        # Ctrl-C, to the process group, once the run has written its first submission
        (lambda pid: os.killpg(pid, signal.SIGINT), 130, "submission-*.csv"),
        # `kill`, to the benchmark alone, once the split is written: while a stage runs
        (lambda pid: os.kill(pid, signal.SIGTERM), 143, "split.csv"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_run_leaves_the_earlier_out_whole_and_nothing_running(
    stop: Callable[[int], None], status: int, written: str, tmp_path: Path
) -> None:
    # Stopped once the run has written a file that matches `written`: OUT stays the earlier
    # run's, the temporary folders are gone, and so is every process the run started.
    out = tmp_path / "out"
    out.mkdir()
    earlier = {"results.md": "# the earlier run\n", "submission-scratch.csv": "id,label\n"}
    for name, text in earlier.items():
        (out / name).write_text(text)
    (tmp_path / "tmp").mkdir()
    process = start_tiny_run(out, tmp_path / "tmp")
    wait_while_running(
        process,
        lambda: any(path.read_text() != earlier.get(path.name) for path in tmp_path.rglob(written)),
    )
    started = psutil.Process(process.pid).children(recursive=True)
    stop(process.pid)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert f"interrupted: {out} is as it was before the run" in stderr
    _, still_running = psutil.wait_procs(started, timeout=10)
    assert still_running == []
    assert {path.name: path.read_text() for path in out.iterdir()} == earlier
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "tmp"]
    assert not any((tmp_path / "tmp").iterdir())


def test_the_next_run_removes_the_temporary_folders_of_a_killed_one(tmp_path: Path) -> None:
    # SIGKILL leaves a run no time to clean up; the next run into the same OUT removes what its
    # gone process left, and nothing of a process still running.
    out, temp = tmp_path / "out", tmp_path / "tmp"
    temp.mkdir()
    living = tmp_path / f".out-partial-{os.getpid()}-x"  # this test's own process: running
    living.mkdir()

    def folders_of(process: subprocess.Popen) -> list[Path]:
        return [*tmp_path.glob(f".out-partial-{process.pid}-*"), *temp.glob(f"*-{process.pid}-*")]

    killed = start_tiny_run(out, temp)
    wait_while_running(
        killed, lambda: any(temp.glob(f"imgclf-bench-{killed.pid}-*/project/dvc.yaml"))
    )
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    left = folders_of(killed)
    assert len(left) == 2  # the results in the making and the project copy

    following = start_tiny_run(out, temp)
    wait_while_running(following, lambda: len(folders_of(following)) == 2)
    assert not any(path.exists() for path in left)
    assert living.is_dir()
    following.send_signal(signal.SIGTERM)
    _, stderr = following.communicate(timeout=120)
    assert all(f"removed {path}, left by a run that was killed" in stderr for path in left)
    assert sorted(path.name for path in tmp_path.iterdir()) == [living.name, "tmp"]
    assert not any(temp.iterdir())


def test_a_folder_whose_process_id_now_belongs_to_a_later_process_is_removed(
    tmp_path: Path,
) -> None:
    # A killed run's id may be given to a new process: that one's start, after the folder was
    # last written, tells it apart from the run that wrote it.
    later = subprocess.Popen(["sleep", "60"])
    try:
        reused = tmp_path / f".out-partial-{later.pid}-x"
        reused.mkdir()
        an_hour_ago = time.time() - 3600
        os.utime(reused, (an_hour_ago, an_hour_ago))
        living = tmp_path / f".out-partial-{os.getpid()}-x"  # this test's process, started before
        living.mkdir()
        remove_abandoned(tmp_path, ".out-partial-")
        assert not reused.exists() and living.is_dir()
    finally:
        later.kill()
        later.wait()


def test_the_machine_line_names_the_cpus_family_model_and_instruction_sets(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
        "model name\t: AMD EPYC 9B14\nstepping\t: 1\n"
        "flags\t\t: fpu sse avx avx2 avx512f avx512dq avx512_bf16 amx_tile amx_bf16\n\n"
        "processor\t: 1\nmodel name\t: another CPU\n"
    )
    line = describe(cpuinfo)
    assert line.startswith(
        "AMD EPYC 9B14 (family 25, model 17, stepping 1; avx2, avx512f, avx512_bf16, amx_tile, "
        "amx_bf16), "
    ), line
    assert " cores (" in describe(tmp_path / "absent") and "torch " in describe(tmp_path / "absent")


def test_a_short_training_time_is_given_in_seconds(tmp_path: Path) -> None:
    built = {"arch": "resnet", "image_size": 16}
    trained_as_the_stages_leave_it(tmp_path, "scratch", built, train_s=42)
    assert model_row(tmp_path, "scratch")["training time"] == "42 s"


def test_a_seed_resumed_after_a_stop_is_marked_in_the_seeds_report(tmp_path: Path) -> None:
    # Its minutes cover only the epochs after the resume: a reader must not take them for a
    # whole run's.
    built = {"arch": "resnet", "image_size": 16}
    trained_as_the_stages_leave_it(tmp_path, "scratch", built, train_s=42)
    assert seeds_row(tmp_path, "scratch", 1, 90.0) == "| 1 | 2 of 3 | 75.00% | 50.00% | 9 | 1.5 |"
    trained_as_the_stages_leave_it(tmp_path, "scratch", built, train_s=42, resumed_after_epoch=2)
    assert seeds_row(tmp_path, "scratch", 1, 90.0) == (
        "| 1 | 2 of 3 | 75.00% | 50.00% | 9 | 1.5 (resumed after epoch 2) |"
    )
    # A project bench/run.py copied from a commit before the stages wrote the key.
    timing = tmp_path / paths.METRICS / "timing/train_scratch.json"
    timing.write_text(json.dumps({"scratch": {"train_s": 42, "images_per_s": 9}}))
    assert seeds_row(tmp_path, "scratch", 1, 90.0) == "| 1 | 2 of 3 | 75.00% | 50.00% | 9 | 1.5 |"
