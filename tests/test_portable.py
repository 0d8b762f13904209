"""The same bits on another machine: with train.deterministic, the training, evaluation and
export stages pin the CPU's machine-dependent arithmetic, so a machine with another vector width,
another MKL code path and another number of cores computes exactly what this one does, and a
forced `dvc repro` there writes every output of every stage as it is in dvc.lock.

"Another machine" is this one told so through the variables such a machine would differ in:
torch's CPU capability, oneDNN's instruction set, MKL's code path, the OpenMP and MKL thread
counts, and one core instead of all of them (the stages' pins overwrite these), and NumPy's
vector code and its OpenBLAS at AVX2 (which nothing pins: evaluation's NumPy arithmetic must
not depend on them).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.workspace import write_params
from tests.conftest import run

pytestmark = pytest.mark.slow

ANOTHER_MACHINE = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "AUTO",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's AVX-512 code off
    "OPENBLAS_CORETYPE": "Haswell",
}
STAGES = ("train_scratch", "train_transfer", "evaluate", "export")


def on_one_core() -> list[str]:
    return ["taskset", "-c", str(min(os.sched_getaffinity(0)))]


def run_stage_command(project: Path, stage: str, machine: dict[str, str]) -> None:
    """Run the stage by its command, under the given settings (another machine's on one core)."""
    one_core = on_one_core() if machine else []
    run([*one_core, sys.executable, "-m", f"stages.{stage}"], project, env=machine)


def output_digests(project: Path) -> dict[str, str]:
    """Each output's digest as dvc.lock records it (a folder's is over its files)."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("stage", STAGES)
def test_importing_a_stage_leaves_the_cpu_code_path_unchosen(stage: str) -> None:
    """torch fixes its CPU code path at the first computation; a library that computes on
    import (Kornia does) would fix it before the stage can pin it."""
    chosen_after_import = (
        f"import os, stages.{stage}, torch; os.environ['ATEN_CPU_CAPABILITY'] = 'default'; "
        "print(torch.backends.cpu.get_cpu_capability())"
    )
    result = subprocess.run(
        [sys.executable, "-c", chosen_after_import],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "DEFAULT"


@pytest.fixture(scope="module")
def project(repro_copy: Path) -> Path:
    return repro_copy


def test_a_forced_rerun_on_another_machine_writes_the_same_bits(project: Path) -> None:
    here = output_digests(project)  # what `dvc repro` wrote on this machine
    run([*on_one_core(), "dvc", "repro", "--force"], project, env=ANOTHER_MACHINE)
    there = output_digests(project)
    assert {"models/scratch.pt", "models/transfer.pt", "models/export"} <= set(here)
    assert [path for path in here if there[path] != here[path]] == []


def test_without_pinning_the_other_machine_differs(project: Path) -> None:
    """The check above can fail: unpinned, the same settings change the trained weights."""
    params, weights = project / "params.yaml", project / "models/scratch.pt"
    write_params(params, params, {"train.deterministic": False})
    try:
        run_stage_command(project, "train_scratch", {})
        here = sha256(weights)
        run_stage_command(project, "train_scratch", ANOTHER_MACHINE)
        there = sha256(weights)
    finally:
        run(["git", "checkout", "HEAD", "--", "params.yaml"], project)
    assert there != here


def count_vm_calls(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench/mkl_vm_calls.py", *command],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
    )


def test_the_pinned_arithmetic_calls_no_mkl_vector_math() -> None:
    """torch's CPU sqrt, exp, log, sin and cos call MKL's vector math, which no pin makes the
    same on every CPU (imgclf/runtime.py; AdamW's square root made a Xeon train other
    weights): bench/fingerprint.py runs each kind of operation the stages run."""
    result = count_vm_calls([sys.executable, "bench/fingerprint.py"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "MKL vector math calls: none"


def test_the_vector_math_count_sees_a_call() -> None:
    """The check above can fail: one torch.exp on the CPU is one call of MKL's vmsExp."""
    result = count_vm_calls([sys.executable, "-c", "import torch; torch.rand(9).exp()"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "MKL vector math calls: vmsExp 1"
