"""Training keeps the memory a step frees (imgclf.runtime.keep_freed_memory): glibc's malloc
would otherwise give a large block back to the kernel when it is freed and take fresh pages for
the next one, each a page fault and a page the kernel zeroes."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SMALL_DEMO

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

# A training stage as `dvc repro` runs it, its output sent to stderr, out of the faults' way.
AFTER_TRAINING = """
import contextlib, sys
from tests.conftest import run_stage
with contextlib.redirect_stdout(sys.stderr):
    for stage in ("prepare", "split", "train_scratch"):
        assert run_stage(stage) == 0, stage
"""


def step_faults(setup: str, cwd: Path = ROOT) -> list[int]:
    script = STEP_FAULTS.format(setup=setup, steps=STEPS, blocks=STEP_BLOCKS)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [
        int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("faults")
    ]


def test_steps_that_free_what_they_wrote_settle_to_no_new_pages() -> None:
    # A block freed is not always taken again at once (torch asks for aligned blocks, a bit
    # larger than the hole one leaves): the heap grows for a few steps, then stops.
    assert min(step_faults("")[-2:]) > PAGES_A_STEP // 2  # what the setting saves
    assert max(step_faults(KEPT)[-2:]) < PAGES_A_STEP // 100


@pytest.mark.slow  # prepare, split and a training stage
def test_a_training_stage_keeps_the_memory_it_frees(workdir) -> None:
    project = workdir(**(SMALL_DEMO | {"train__epochs": 1}))
    assert max(step_faults(AFTER_TRAINING, cwd=project)[-2:]) < PAGES_A_STEP // 100
