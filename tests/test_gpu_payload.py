"""A lent GPU machine has torch but no DVC, and gets the other packages the stages need as
wheels (bench/gpu_wheels.txt, ../shared/gpu/README.md). The benchmark runs there as here
(bench/run.py --without-dvc), with only those packages importable: the gpu profile, shrunk,
on the demo data."""

from __future__ import annotations

import csv
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.without_dvc import stages_for
from tests.conftest import ONE_THREAD, ROOT, run, set_options

# What ../shared/gpu/README.md says the machine has, besides Python and what these require.
GPU_MACHINE = ("torch", "torchvision", "numpy", "pandas", "scikit-learn", "matplotlib",
               "pyyaml", "tqdm", "pillow", "psutil")  # fmt: skip
SHRUNK = {"data.image_size": 32, "scratch.input_size": 32, "scratch.width": 8,
          "scratch.epochs": 1, "transfer.epochs": 2, "split.max_train_per_class": 20,
          "train.batch_size": 32, **ONE_THREAD}  # fmt: skip


def with_requirements(names: tuple[str, ...]) -> set[str]:
    """`names` and every distribution they require, as installed here."""
    found: set[str] = set()
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:  # pandas: the machine has it, the tests do not need it
            continue
        for requirement in map(Requirement, requires):
            if not requirement.marker or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return found


def payload() -> dict[str, str]:
    lines = (ROOT / "bench/gpu_wheels.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    return {canonicalize_name(name): pinned for name, pinned in pins.items()}


def gpu_machine() -> dict[str, str]:
    """The environment in which only what a lent GPU machine has and the payload import
    (tests/gpu_machine/sitecustomize.py halts the rest)."""
    importable = with_requirements(GPU_MACHINE) | set(payload())
    return {
        "PYTHONPATH": str(ROOT / "tests" / "gpu_machine"),
        "GPU_MACHINE_IMPORTABLE": ",".join(sorted(importable)),
    }


def test_the_payload_pins_the_versions_the_tests_run() -> None:
    assert {name: version(name) for name in payload()} == payload()


@pytest.mark.slow
def test_the_benchmark_runs_with_only_the_gpu_machine_packages_and_the_payload(
    tmp_path: Path,
) -> None:
    machine = gpu_machine()
    lacking = run([sys.executable, "-c", "import dvc"], ROOT, check=False, env=machine)
    assert "import of dvc halted" in lacking.stderr

    out, work = tmp_path / "out", tmp_path / "work"
    command = [sys.executable, "bench/run.py", "--without-dvc", "--data", "data/demo"]
    command += ["--profile", "gpu", *set_options(SHRUNK), "--out", str(out), "--work", str(work)]
    run(command, ROOT, timeout=900, env=machine)
    report = (out / "results.md").read_text()
    assert "transfer (efficientnet_lite2, 32 px)" in report and "ensemble:" in report
    for model in ("scratch", "transfer", "ensemble"):
        with open(out / f"submission-{model}.csv", newline="") as file:
            assert len(list(csv.DictReader(file))) == 270
    assert not (work / "project" / ".dvc").exists()


def test_the_gpu_tests_import_with_only_the_gpu_machine_packages_and_the_payload() -> None:
    """Step 4 of the README's GPU steps runs tests/test_gpu.py there; here, without CUDA, what
    is checked is that pytest imports the module and collects its two cases with -m gpu. The
    plugins installed here and not there are not loaded."""
    machine = gpu_machine() | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu"]
    result = run([*command, "--collect-only", "tests/test_gpu.py"], ROOT, env=machine)
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected == [
        f"tests/test_gpu.py::test_training_steps_never_wait_for_the_host[{name}]"
        for name in ("scratch", "transfer")
    ], result.stdout


def test_without_dvc_runs_a_target_after_every_stage_whose_outputs_it_reads() -> None:
    assert stages_for(ROOT, ("split",)) == ["validate", "prepare", "split"]
    assert stages_for(ROOT, ("make_submission", "evaluate")) == [
        "validate", "prepare", "split", "check", "train_scratch", "train_transfer", "evaluate",
        "make_submission",
    ]  # fmt: skip
