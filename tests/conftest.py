"""Shared fixtures and helpers: parameters with overrides, a real DVC project in a temporary folder,
a command-line tool's parser."""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bench.workspace import ROOT, TRAINED_PROJECT_FILES, copy_project, set_key, write_params
from imgclf.config import Params, read_yaml

# dvc, and the `python` of the stages' commands, from the environment running the tests.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

# `make test` runs two test processes on two cores: with a thread each, two tiny `dvc repro`s
# at once took 69-70 s against 84-85 s with two threads each, which contend for the cores.
ONE_THREAD = {"train.cpu_threads": 1}

# Small enough for two CPU cores: every stage runs for real, in seconds.
TINY = {
    "data.image_size": 16,
    "train.epochs": 2,
    "train.batch_size": 128,
    "scratch.width": 8,
    "split.max_train_per_class": 40,
    **ONE_THREAD,
}


# The demo at 16 px, 8 images a class, two short epochs: one training stage in seconds, in the
# test's own process (the workdir fixture's keyword form).
SMALL_DEMO = {
    "data__root": str(ROOT / "data/demo"),
    "data__image_size": 16,
    "split__max_train_per_class": 8,
    "train__epochs": 2,
    "train__batch_size": 16,
}


# A training stage on one's own small data set in seconds (the workdir fixture's keyword form).
ONE_TINY_EPOCH = {"data__image_size": 16, "train__epochs": 1, "scratch__width": 4}


def set_options(settings: dict[str, Any]) -> list[str]:
    """The benchmark commands' `--set KEY=VALUE` options for `settings`."""
    return [option for key, value in settings.items() for option in ("--set", f"{key}={value}")]


@pytest.fixture
def make_params() -> Callable[..., Params]:
    """Params from the project's params.yaml with dotted-key overrides."""

    def make(**overrides: Any) -> Params:
        tree = read_yaml(ROOT / "params.yaml")
        for key, value in overrides.items():
            set_key(tree, key.replace("__", "."), value)
        return Params.model_validate(tree)

    return make


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """tmp_path as the working directory, with the project's params.yaml, one thread, and
    overrides as in make_params (data__root=...): where a stage's main() runs in this process."""

    def make(**overrides: Any) -> Path:
        changes = ONE_THREAD | {key.replace("__", "."): value for key, value in overrides.items()}
        write_params(ROOT / "params.yaml", tmp_path / "params.yaml", changes)
        monkeypatch.chdir(tmp_path)
        return tmp_path

    return make


def pretend_cpu_bf16(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """As on a CPU with (native) or without AVX-512 BF16 or AMX, wherever the code asks."""
    for module in ("imgclf.runtime", "imgclf.train"):
        monkeypatch.setattr(f"{module}.cpu_computes_bf16_natively", lambda: native)


def run_stage(name: str) -> int:
    """Run stages/<name>.py's main() here; return its exit status."""
    try:
        importlib.import_module(f"stages.{name}").main()
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def split_the_data(capsys: pytest.CaptureFixture[str] | None = None) -> None:
    """prepare and split run here: what a training stage reads; their output discarded if
    `capsys` is given."""
    for stage in ("prepare", "split"):
        assert run_stage(stage) == 0, stage
    if capsys:
        capsys.readouterr()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def trained_project_files(folder: Path, missing: Path | None = None) -> None:
    """Empty files where a trained project has its files (but `missing`): enough for the
    benchmark tools' check of a project."""
    for path in [Path("params.yaml"), *TRAINED_PROJECT_FILES]:
        if path != missing:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).touch()


def run(
    args: list[str],
    cwd: Path,
    check: bool = True,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (with `env` added to the environment); fail with its output if it fails."""
    result = subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=os.environ | (env or {}),
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def make_project(folder: Path, **overrides: Any) -> Path:
    """A copy of the project in a fresh git + DVC repository under `folder`, with TINY
    parameters and the dotted-key `overrides` (`{"train.epochs": 3}`), committed."""
    return copy_project(folder / "project", {**TINY, **overrides})


@pytest.fixture(scope="session")
def first_repro(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, str]:
    """A project after one full `dvc repro`, committed, and what that `dvc repro` printed.
    The full run takes a minute or more, so the modules share it, and so do `make test`'s
    two test processes (pytest-xdist's workers): the first to need it runs it, the other
    waits for it if it is still running, and each gets a copy of its own to work in."""
    shared = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # in a pytest-xdist worker
        shared = shared.parent  # the folder of this session's workers' temporary folders
    pristine, printed = shared / "first_repro", shared / "first_repro.log"
    with open(shared / "first_repro.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not printed.exists():
            shutil.rmtree(pristine, ignore_errors=True)  # what a failed run in the other left
            project = make_project(pristine)
            output = run(["dvc", "repro"], project).stdout
            run(["git", "add", "-A"], project)
            run(["git", "commit", "-q", "-m", "first run"], project)
            printed.write_text(output)
    copy = tmp_path_factory.mktemp("repro") / "project"
    # .dvc/tmp too, as `dvc repro` left it: no DVC command runs in the pristine project again.
    shutil.copytree(pristine / "project", copy, symlinks=True)
    return copy, printed.read_text()


@pytest.fixture
def repro_project(first_repro: tuple[Path, str]) -> Iterator[Path]:
    """first_repro's project, shared by several modules: a test may add experiments, but
    must leave the workspace as it found it, ignored files included (checked after each
    test, as the tests run in no fixed order)."""
    project = first_repro[0]
    before = workspace_state(project)
    yield project
    assert workspace_state(project) == before, "the test changed the shared project"


def workspace_state(project: Path) -> str:
    """`git status` with ignored files: what a test may not leave changed in a shared project."""
    return run(["git", "status", "--porcelain", "--ignored"], project).stdout


@pytest.fixture(scope="module")
def repro_copy(first_repro: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of first_repro's project (git, DVC cache and all) for one module to change at
    will: seconds to make, where the full run it copies takes a minute or more. Without
    .dvc/tmp, DVC's per-checkout state (locks, the experiment queue's broker): a queue worker
    that an earlier test started there may still be deleting its message files while the copy
    reads them, which failed a copy once."""
    source = first_repro[0]
    copy = tmp_path_factory.mktemp("copy") / "project"

    def dvc_tmp(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder) == source / ".dvc" else []

    shutil.copytree(source, copy, symlinks=True, ignore=dvc_tmp)
    return copy


def assert_legible_png(path: Path, min_side: int = 300, max_side: int = 4000) -> None:
    """A PNG, neither a thumbnail nor a poster, and not one flat colour."""
    with Image.open(path) as image:
        assert image.format == "PNG", path
        assert min_side <= min(image.size) and max(image.size) <= max_side, (path, image.size)
        extrema = image.convert("L").getextrema()
    assert extrema[0] < extrema[1], f"{path} is one colour"


def parser_of(main: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser `main` builds, caught as it would parse."""
    built = []

    def caught(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        built.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", caught)
    with pytest.raises(SystemExit):
        main()
    return built[0]
