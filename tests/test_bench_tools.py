"""The benchmark tools' front doors: what they refuse before any work, as one line; their
--help; and what bench/throughput.py writes. No training: where a tool would prepare data or
run the pipeline, that work is replaced and must not be reached."""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from bench import (
    ablation,
    allocator,
    classify,
    dvc_yaml,
    ema,
    ensemble,
    resolution,
    seeds,
    throughput,
)
from bench.workspace import write_params
from imgclf import paths
from tests.conftest import ROOT, parser_of, trained_project_files

DEMO = str(ROOT / "data/demo")


def no_work(*args: object, **kwargs: object) -> None:
    raise AssertionError("the work started before the arguments were checked")


class WorkStarted(Exception):
    pass


def work_started(*args: object, **kwargs: object) -> None:
    raise WorkStarted


@pytest.fixture
def stopped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Callable[[], None], list[str]], tuple[int | str | None, list[str]]]:
    """Run a tool's main with arguments; its exit status and its stderr's lines."""

    def run(main: Callable[[], None], argv: list[str]) -> tuple[int | str | None, list[str]]:
        monkeypatch.setattr(sys, "argv", ["bench/tool.py", *argv])
        with pytest.raises(SystemExit) as stop:
            main()
        return stop.value.code, capsys.readouterr().err.splitlines()

    return run


# -- 1. throughput (and ablation): the keys and the data checked before any work ------------


@pytest.fixture
def no_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (throughput, ablation):
        monkeypatch.setattr(module, "copy_project", no_work)
    monkeypatch.setattr(ablation, "data_view", no_work)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--compare", "train.lrr=0.1,0.2"], "not keys of params.yaml: train.lrr"),
        (["--set", "train.lrr=0.1"], "not keys of params.yaml: train.lrr"),
        (["--compare", "train.precision"], "--compare takes KEY=A,B"),
        (
            ["--compare", "train.precision=float32,float63"],
            "--compare: train.precision: Input should be 'auto', 'float32' or 'bfloat16' (got "
            "'float63')",
        ),
    ],
)
def test_the_throughput_bench_checks_its_keys_and_values_before_preparing_data(
    arguments: list[str], message: str, stopped, no_preparation
) -> None:
    status, err = stopped(throughput.main, ["--data", DEMO, "--profile", "tiny", *arguments])
    assert status == 2 and err[-1].startswith("tool.py: error: ") and message in err[-1], err


def test_an_unknown_profile_stops_the_throughput_bench_in_one_line(stopped, no_preparation) -> None:
    status, err = stopped(throughput.main, ["--data", DEMO, "--profile", "nope"])
    assert status == 2 and err[-1].startswith("tool.py: error: no profile nope: give one of")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "train.epoch=1"], "error: --set: not keys of params.yaml: train.epoch (did"),
        (["--set", "train.epochs=-1"], "error: --set: train.epochs: Input should be greater"),
        (["--set", "train.epochs"], "error: --set train.epochs: write KEY=VALUE"),
        (["--images", "9"], "error: --images 9: give 10 or more (classify's memory is measured"),
    ],
)
def test_the_classify_bench_checks_its_arguments_before_copying_the_project(
    arguments: list[str], message: str, stopped, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(classify, "copy_project", no_work)
    status, err = stopped(classify.main, arguments)
    assert status in (1, 2) and err[-1].startswith(message), err


def test_the_classify_report_names_the_data_the_run_read() -> None:
    assert classify.data_and_params("data/demo", []) == "data/demo, params.yaml"
    assert classify.data_and_params("/data/mine", ["data.root=/data/mine"]) == (
        "/data/mine, params.yaml with data.root=/data/mine"
    )


@pytest.mark.parametrize("main", [throughput.main, ablation.main], ids=["throughput", "ablation"])
def test_a_data_folder_without_train_stops_the_bench_before_any_work(
    main: Callable[[], None], tmp_path: Path, stopped, no_preparation
) -> None:
    out = ["--out", str(tmp_path / "out")] if main is ablation.main else []
    status, err = stopped(main, ["--data", str(tmp_path / "nope"), "--profile", "tiny", *out])
    assert status == 2 and f"--data {tmp_path / 'nope'} does not exist" in err[-1], err
    (tmp_path / "flat").mkdir()
    status, err = stopped(main, ["--data", str(tmp_path / "flat"), "--profile", "tiny", *out])
    assert status == 2 and f"--data {tmp_path / 'flat'} has no train/<class>/ folders" in err[-1], (
        err
    )
    # data.train_dir, as the run would read it, names the folder
    (tmp_path / "flat" / "train").mkdir()
    setting = ["--set", "data.train_dir=seg/train"]
    status, err = stopped(
        main, ["--data", str(tmp_path / "flat"), "--profile", "tiny", *out, *setting]
    )
    assert status == 2 and "has no seg/train/<class>/ folders" in err[-1], err
    assert not (tmp_path / "out" / "ablation.md").exists()


# -- 2. ensemble: a folder that is not a trained project ------------------------------------


def test_the_ensemble_bench_given_the_work_folder_says_to_pass_its_project(
    tmp_path: Path, stopped, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # restored, should the command enter a folder
    (tmp_path / "work" / "project").mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", tmp_path / "work" / "project" / "params.yaml")
    for option in ("--project", "--projects"):
        status, err = stopped(ensemble.main, [option, str(tmp_path / "work")])
        assert status == 1 and len(err) == 1, err
        assert err[0].startswith("error: ") and f"pass {tmp_path / 'work' / 'project'}" in err[0]
    status, err = stopped(ensemble.main, ["--project", str(tmp_path)])
    assert status == 1 and err == [
        f"error: {tmp_path} is not a project folder (no params.yaml): pass a bench/run.py "
        "--work folder's project/, or a project whose models are trained"
    ]


def test_the_ensemble_bench_on_an_untrained_project_is_one_line(
    tmp_path: Path, stopped, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    status, err = stopped(ensemble.main, ["--project", str(tmp_path)])
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith(f"error: {tmp_path} has no trained models (")
    assert err[0].endswith("missing): run `dvc repro` there first")


def test_an_experiment_the_ensemble_bench_cannot_apply_is_named_with_dvcs_reason(
    tmp_path: Path, stopped, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trained_project_files(tmp_path)  # a project, in no DVC repository
    status, err = stopped(ensemble.main, ["--project", str(tmp_path), "--experiments", "nope"])
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith(f"error: `dvc exp apply nope` failed in {tmp_path.resolve()}: ")
    assert "not inside of a DVC repository" in err[0]


@pytest.mark.parametrize(
    ("main", "arguments", "lacking"),
    [
        (
            ema.main,
            ["--averages", "none", "--out", "x.md"],
            "has no prepared and split data (data/prepared/manifest.csv, data/split.csv, "
            "data/prepared/images.npy missing): run `dvc repro split` there first",
        ),
        (resolution.main, ["--sizes", "scratch=16"], "has no trained models ("),
    ],
    ids=["ema", "resolution"],
)
def test_a_bench_that_reads_a_project_says_in_one_line_what_the_project_lacks(
    main: Callable[[], None],
    arguments: list[str],
    lacking: str,
    tmp_path: Path,
    stopped,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # restored, should the command enter a folder
    (tmp_path / "project").mkdir()
    shutil.copy(ROOT / "params.yaml", tmp_path / "project" / "params.yaml")
    status, err = stopped(main, ["--project", str(tmp_path), *arguments])
    assert status == 1 and err == [
        f"error: {tmp_path} is not a project but holds one (a bench/run.py --work folder): "
        f"pass {tmp_path / 'project'}"
    ]
    status, err = stopped(main, ["--project", str(tmp_path / "project"), *arguments])
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith(f"error: {tmp_path / 'project'} {lacking}"), err


def test_the_averages_bench_needs_the_data_split_but_no_model_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the command enters the project
    trained_project_files(tmp_path)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    for model in paths.MODEL_NAMES:
        (tmp_path / paths.checkpoint(model)).unlink()
    monkeypatch.setattr(ema, "start_as_a_stage", work_started)
    command = ["--project", str(tmp_path), "--averages", "none", "--out", "x.md"]
    monkeypatch.setattr(sys, "argv", ["bench/ema.py", *command])
    with pytest.raises(WorkStarted):
        ema.main()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "seed=3"], "--set seed=...: give the seeds with --seeds"),
        (["--set", "transfer.epoch=3"], "not keys of params.yaml: transfer.epoch (did you mean"),
        (["--set", "transfer.epochs=0"], "--set: transfer.epochs: Input should be greater"),
        (["--seeds", "one"], "argument --seeds: invalid int value: 'one'"),
        (["--params", "nowhere.yaml"], "--params nowhere.yaml: no such file"),
    ],
)
def test_the_seeds_bench_checks_its_arguments_before_any_run(
    arguments: list[str], message: str, tmp_path: Path, stopped, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a project with trained models (files enough for the check), nothing is run."""
    monkeypatch.setattr(seeds.Pipeline, "rerun", no_work)
    trained_project_files(tmp_path)
    command = ["--project", str(tmp_path), "--model", "transfer", "--out", "x.md"]
    status, err = stopped(seeds.main, [*command, "--seeds", "1", *arguments])
    assert status == 2 and message in err[-1], err
    assert not (tmp_path / "x.md").exists()


def test_the_seeds_bench_needs_no_checkpoint_of_the_model_it_retrains(
    tmp_path: Path, stopped, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seeds run stopped in training leaves the project without that model's checkpoint
    (DVC deletes a stage's outputs before running it): the next run retrains it anyway, but
    evaluation needs the other model's."""
    monkeypatch.setattr(seeds.Pipeline, "rerun", work_started)
    trained_project_files(tmp_path, missing=paths.checkpoint("transfer"))
    command = ["--project", str(tmp_path), "--seeds", "2", "--out", str(tmp_path / "x.md")]
    status, err = stopped(seeds.main, [*command, "--model", "scratch"])
    assert status == 2 and "(models/transfer.pt missing): run `dvc repro`" in err[-1], err
    monkeypatch.setattr(sys, "argv", ["bench/seeds.py", *command, "--model", "transfer"])
    with pytest.raises(WorkStarted):
        seeds.main()


def test_the_averages_bench_names_each_key_where_it_trains_unlike_the_profile(
    tmp_path: Path,
) -> None:
    # bench/seeds.py leaves its last seed's parameters in the project: a run of the averages
    # bench after it must say so.
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    assert ema.parameters_used(project) == "Parameters: the project's params.yaml."
    shutil.copy(ROOT / "params.yaml", tmp_path / "profile-params.yaml")
    assert ema.parameters_used(project).endswith("the profile's (profile-params.yaml).")
    write_params(
        project / "params.yaml", project / "params.yaml", {"seed": 2, "scratch.dropout": 0.3}
    )
    assert ema.parameters_used(project) == (
        "Parameters: the project's params.yaml, which differs from profile-params.yaml in "
        "scratch.dropout 0.3 (profile: None), seed 2 (profile: 0)."
    )


def test_the_seeds_bench_starts_from_the_given_file_else_the_profiles_else_the_projects(
    tmp_path: Path,
) -> None:
    project, given = tmp_path / "project", tmp_path / "mine.yaml"
    assert seeds.starting_params(project, None) == project / "params.yaml"
    (tmp_path / "profile-params.yaml").touch()  # bench/run.py keeps it beside the project
    assert seeds.starting_params(project, None) == tmp_path / "profile-params.yaml"
    assert seeds.starting_params(project, given) == given


@pytest.mark.parametrize(
    ("seed_list", "expected"),
    [([0], "The scratch model at seed 0"), ([1, 2], "The scratch model at seeds 1, 2")],
)
def test_the_seeds_report_title_reads_right_for_one_seed_as_for_many(
    seed_list: list[int], expected: str
) -> None:
    assert seeds.title("scratch", seed_list) == expected


# -- 3. --help: the whole docstring, every option explained, defaults shown -----------------


# Every tool that builds a parser, a new one included.
BENCH_TOOLS = [
    importlib.import_module(f"bench.{path.stem}")
    for path in sorted((ROOT / "bench").glob("*.py"))
    if "tool_parser(__doc__)" in path.read_text()
]


@pytest.mark.parametrize("module", BENCH_TOOLS, ids=lambda module: module.__name__)
def test_each_bench_tools_help_gives_its_whole_docstring_and_explains_every_option(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = parser_of(module.main, monkeypatch).format_help()
    assert module.__doc__.strip() in shown  # as written: paragraphs and examples kept
    parser = parser_of(module.main, monkeypatch)
    for action in parser._actions:
        assert action.help, f"{module.__name__}: {action.option_strings} has no help text"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert f"(default: {action.default})" in shown, (action.option_strings, shown)


def test_the_classify_benchs_help_says_it_runs_the_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown = parser_of(classify.main, monkeypatch).format_help()
    opening = " ".join(shown.split("\n\n")[1:3])  # the description's first paragraphs
    assert "what it costs: it first runs the whole pipeline" in opening.lower(), opening
    assert "`dvc repro`" in opening and "minutes on the demo" in opening, opening


# -- 4. throughput: --out, and its heading -------------------------------------------------


def test_the_throughput_table_is_written_with_the_command_that_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def copied(project: Path, params: object, repository: bool = True) -> Path:
        project.mkdir(parents=True)
        shutil.copy(ROOT / "params.yaml", project / "params.yaml")
        return project

    monkeypatch.setattr(throughput, "copy_project", copied)
    monkeypatch.setattr(throughput, "run_measured", lambda command, cwd: (0.0, 0.0))
    measured = {"real": 100.0, "bound": 200.0, "first_step_s": 1.5}
    monkeypatch.setattr(throughput, "measure", lambda name, steps: measured)
    monkeypatch.chdir(tmp_path)  # --out relative to it, though the command enters its copy
    out = tmp_path / "tables" / "throughput.md"
    arguments = [
        "--data",
        DEMO,
        "--profile",
        "tiny",
        "--steps",
        "3",
        "--out",
        "tables/throughput.md",
    ]
    monkeypatch.setattr(sys, "argv", ["bench/throughput.py", *arguments])
    throughput.main()
    printed = capsys.readouterr().out
    written = out.read_text()
    assert "| scratch | 100 | 200 | 0.50 | 1.5 | not run (--stage) |" in written
    assert written.startswith(printed.rstrip("\n"))
    assert f"Command: `python bench/throughput.py {' '.join(arguments)}`" in written
    assert [path.name for path in out.parent.iterdir()] == ["throughput.md"]  # no temporary


def test_the_throughput_heading_names_the_settings_only_when_there_are_some() -> None:
    args = argparse.Namespace(profile="tiny", set=[], steps=3, compile=False)
    assert "profile tiny, 3 steps" in throughput.heading(args, None)
    args.set = ["train.lr=0.1", "scratch.width=8"]
    assert "profile tiny with train.lr=0.1 scratch.width=8, 3 steps" in throughput.heading(
        args, None
    )


# -- 5. allocator: its table -----------------------------------------------------------------


def test_the_allocator_table_gives_each_round_and_the_ratio_of_the_medians() -> None:
    def measured(rate: float) -> dict[str, float]:
        return {"real": rate, "faults": 2e6, "peak_kib": 2**20}

    rounds = {
        ("scratch", "training", "as it comes"): [measured(100), measured(90), measured(110)],
        ("scratch", "training", "kept"): [measured(120), measured(130), measured(125)],
        ("transfer", "inference", "as it comes"): [measured(40), measured(50), measured(45)],
        ("transfer", "inference", "kept"): [measured(45), measured(45), measured(90)],
    }
    shown = allocator.table(rounds, "Heading:").splitlines()
    assert shown[0] == "Heading:"
    assert shown[4:] == [
        "| scratch | training | as it comes | 100.0, 90.0, 110.0 | 100.0 | 1.00 "
        "| 2.00 million | 1.00 GiB |",
        "| scratch | training | kept | 120.0, 130.0, 125.0 | 125.0 | 1.25 "
        "| 2.00 million | 1.00 GiB |",
        "| transfer | inference | as it comes | 40.0, 50.0, 45.0 | 45.0 | 1.00 "
        "| 2.00 million | 1.00 GiB |",
        "| transfer | inference | kept | 45.0, 45.0, 90.0 | 45.0 | 1.00 "
        "| 2.00 million | 1.00 GiB |",
    ]


def test_the_dvc_yaml_bench_names_a_dvc_command_that_fails_in_one_line(
    tmp_path: Path, stopped
) -> None:
    out = tmp_path / "dvc_yaml.md"
    arguments = ["--project", str(tmp_path), "--command", "status", "--repeats", "1"]
    status, err = stopped(dvc_yaml.main, [*arguments, "--out", str(out)])
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith(f"error: `dvc status` failed in {tmp_path}: ")
    assert "not inside of a DVC repository" in err[0] and not out.exists()


def test_the_dvc_yaml_bench_needs_a_round_at_least(tmp_path: Path, stopped) -> None:
    out = tmp_path / "dvc_yaml.md"
    arguments = ["--project", str(tmp_path), "--repeats", "0", "--out", str(out)]
    status, err = stopped(dvc_yaml.main, arguments)
    assert status == 1 and err == ["error: --repeats 0: give 1 or more rounds"], err
    assert not out.exists()
