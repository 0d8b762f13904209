"""The stages that run a network keep the memory a step or a batch frees
(imgclf.runtime.keep_freed_memory): glibc's malloc would otherwise give a large block back to
the kernel when it is freed and take fresh pages for the next one, each a page fault and a page
the kernel zeroes. bench/allocator.py measures what that buys."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bench import allocator
from bench.throughput import STEADY_SCHEDULE
from bench.workspace import write_params
from tests.conftest import ONE_THREAD, ROOT, SMALL_DEMO

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="sets glibc's malloc")

STEP_BLOCKS = (48, 64, 40)  # MiB: each above the 32 MiB up to which glibc may keep a block
STEPS = 12
PAGES_A_STEP = sum(STEP_BLOCKS) * 2**20 // resource.getpagesize()

# After `setup`, prints the minor page faults of each of STEPS steps that write the same blocks
# and free them.
STEP_FAULTS = """
import resource
import torch
{setup}
for _ in range({steps}):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.ones(mib * 2**20, dtype=torch.uint8) for mib in {blocks}]
    del blocks
    print("faults", resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

KEPT = "from imgclf.runtime import keep_freed_memory\nkeep_freed_memory()"


def after_stages(*names: str) -> str:
    """Setup that runs stages as `dvc repro` does, their output sent to stderr (out of the
    faults' way)."""
    return f"""
import contextlib, sys
from tests.conftest import run_stage
with contextlib.redirect_stdout(sys.stderr):
    for stage in {names}:
        assert run_stage(stage) == 0, stage
"""


def run_python(script: str, cwd: Path) -> str:
    """What `script` printed, run by a new Python process in `cwd` (the project importable)."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def step_faults(setup: str, cwd: Path = ROOT) -> list[int]:
    printed = run_python(STEP_FAULTS.format(setup=setup, steps=STEPS, blocks=STEP_BLOCKS), cwd)
    return [int(line.split()[1]) for line in printed.splitlines() if line.startswith("faults")]


def test_steps_that_free_what_they_wrote_settle_to_no_new_pages() -> None:
    # A block freed is not always taken again at once (torch asks for aligned blocks, a bit
    # larger than the hole one leaves): the heap grows for a few steps, then stops.
    assert min(step_faults("")[-2:]) > PAGES_A_STEP // 2  # what the setting saves
    assert max(step_faults(KEPT)[-2:]) < PAGES_A_STEP // 100


@pytest.fixture(scope="module")
def trained_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo project, prepared and split, both models trained for an epoch (at a constant rate,
    as bench/allocator.py trains)."""
    project = tmp_path_factory.mktemp("trained")
    settings = {key.replace("__", "."): value for key, value in SMALL_DEMO.items()}
    changes = ONE_THREAD | settings | {"train.epochs": 1} | STEADY_SCHEDULE
    write_params(ROOT / "params.yaml", project / "params.yaml", changes)
    run_python(after_stages("prepare", "split", "train_scratch", "train_transfer"), project)
    return project


@pytest.mark.slow  # prepare, split and both training stages
@pytest.mark.parametrize("stage", ["train_scratch", "evaluate", "make_submission", "export"])
def test_every_stage_that_runs_a_network_keeps_the_memory_it_frees(
    trained_demo: Path, stage: str
) -> None:
    assert max(step_faults(after_stages(stage), trained_demo)[-2:]) < PAGES_A_STEP // 100


@pytest.mark.slow  # four processes, each loading the data and building a model
@pytest.mark.parametrize("phase", allocator.PHASES)
def test_the_allocator_bench_measures_each_phase_in_a_process_of_its_own(
    trained_demo: Path, phase: str
) -> None:
    figures = {
        label: allocator.measure_apart(trained_demo, phase, "scratch", 3, keep_memory)
        for label, keep_memory in allocator.SETTINGS.items()
    }
    for measured in figures.values():
        assert measured["real"] > 0 and measured["faults"] > 0 and measured["peak_kib"] > 0
