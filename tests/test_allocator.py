"""Training keeps the memory a step frees (imgclf.runtime.keep_freed_memory): glibc's malloc
would otherwise give a large block back to the kernel when it is freed and take fresh pages for
the next one, each a page fault and a page the kernel zeroes."""

from __future__ import annotations

import platform
import resource
import subprocess
import sys

import pytest

from tests.conftest import ROOT

STEP_BLOCKS = (48, 64, 40)  # MiB: each above the 32 MiB up to which glibc may keep a block
STEPS = 12

# Prints the minor page faults of each of STEPS steps that write the same blocks and free them.
STEP_FAULTS = f"""
import resource, sys
import torch
from imgclf.runtime import keep_freed_memory
if sys.argv[1] == "kept":
    keep_freed_memory()
for _ in range({STEPS}):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.ones(mib * 2**20, dtype=torch.uint8) for mib in {STEP_BLOCKS}]
    del blocks
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def step_faults(malloc: str) -> list[int]:
    command = [sys.executable, "-c", STEP_FAULTS, malloc]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return [int(line) for line in result.stdout.split()]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="sets glibc's malloc only")
def test_steps_that_free_what_they_wrote_settle_to_no_new_pages() -> None:
    # A block freed is not always taken again at once (torch asks for aligned blocks, a bit
    # larger than the hole one leaves): the heap grows for a few steps, then stops.
    pages = sum(STEP_BLOCKS) * 2**20 // resource.getpagesize()
    assert min(step_faults("as it comes")[-2:]) > pages // 2  # what the setting saves
    assert max(step_faults("kept")[-2:]) < pages // 100
