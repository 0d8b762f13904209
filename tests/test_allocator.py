"""The stages that run a network keep the memory a step or a batch frees
(imgclf.runtime.keep_freed_memory): glibc's malloc would otherwise give a large block back to
the kernel when it is freed and take fresh pages for the next one, each a page fault and a page
the kernel zeroes. bench/allocator.py measures what that buys."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import allocator, stage_times
from bench.throughput import STEADY_SCHEDULE
from bench.workspace import write_params
from tests.conftest import ONE_THREAD, ROOT, SMALL_DEMO, trained_project_files

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
    as bench/allocator.py trains), with dvc.yaml but no DVC."""
    project = tmp_path_factory.mktemp("trained")
    settings = {key.replace("__", "."): value for key, value in SMALL_DEMO.items()}
    changes = ONE_THREAD | settings | {"train.epochs": 1} | STEADY_SCHEDULE
    write_params(ROOT / "params.yaml", project / "params.yaml", changes)
    shutil.copy(ROOT / "dvc.yaml", project)  # what bench/stage_times.py reads the stages from
    run_python(after_stages("prepare", "split", "train_scratch", "train_transfer"), project)
    return project


@pytest.mark.slow  # prepare, split and both training stages
# evaluate: the stage bench's "kept" case below runs it as its command does and checks the same
@pytest.mark.parametrize("stage", ["train_scratch", "make_submission", "export"])
def test_every_stage_that_runs_a_network_keeps_the_memory_it_frees(
    trained_demo: Path, stage: str
) -> None:
    assert max(step_faults(after_stages(stage), trained_demo)[-2:]) < PAGES_A_STEP // 100


@pytest.mark.slow  # four processes, each loading the data and building a model
@pytest.mark.parametrize("phase", allocator.PHASES)
def test_the_allocator_bench_reports_a_rate_faults_and_peak_memory_for_each_malloc_setting(
    trained_demo: Path, phase: str
) -> None:
    figures = {
        label: allocator.measure_apart(trained_demo, phase, "scratch", 3, keep_memory)
        for label, keep_memory in allocator.SETTINGS.items()
    }
    for measured in figures.values():
        assert measured["real"] > 0 and measured["faults"] > 0 and measured["peak_kib"] > 0


@pytest.mark.slow  # evaluate twice, each with the fault loop after it
@pytest.mark.parametrize(
    ("prelude", "kept"), [(stage_times.AS_IT_COMES, False), ("", True)], ids=["as it comes", "kept"]
)
def test_the_stage_bench_runs_a_stage_with_malloc_as_it_comes_or_as_the_stage_has_it(
    trained_demo: Path, prelude: str, kept: bool
) -> None:
    script = stage_times.stage_command("evaluate", prelude)[-1]
    setup = (
        f"import contextlib, sys\nwith contextlib.redirect_stdout(sys.stderr):\n{indent(script)}"
    )
    last_steps = step_faults(setup, trained_demo)[-2:]
    if kept:
        assert max(last_steps) < PAGES_A_STEP // 100
    else:
        assert min(last_steps) > PAGES_A_STEP // 2


def indent(script: str) -> str:
    return "".join(f"    {line}\n" for line in script.splitlines())


def run_stage_times(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "bench/stage_times.py"), "--project", str(project)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True)


def stage_times_table(project: Path, out: Path, stage: str, compare: str) -> str:
    """The table of `stage` timed once under each variant of `compare`."""
    args = ["--stages", stage, "--compare", compare, "--rounds", "1", "--out", str(out)]
    result = run_stage_times(project, *args)
    assert result.returncode == 0, result.stderr
    return out.read_text()


@pytest.mark.slow  # make_submission four times (the stage that runs a network fastest)
def test_the_stage_bench_times_each_variant_and_puts_params_back(
    trained_demo: Path, tmp_path: Path
) -> None:
    params = (trained_demo / "params.yaml").read_bytes()
    table = stage_times_table(trained_demo, tmp_path / "malloc.md", "make_submission", "malloc")
    assert "| make_submission | malloc as it comes |" in table
    assert "| make_submission | kept |" in table
    assert "Outputs of make_submission: the same bytes in every run." in table
    assert "Command: `python bench/stage_times.py --project" in table

    compare = "submission.id_from=stem,path"
    table = stage_times_table(trained_demo, tmp_path / "ids.md", "make_submission", compare)
    rows = [line.split(" | ")[1] for line in table.splitlines() if line.startswith("| make_")]
    assert rows == ["submission.id_from=stem", "submission.id_from=path"]
    assert (trained_demo / "params.yaml").read_bytes() == params


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stages", "evaluate", "--compare", "evaluate.batch_sise=8,16"], "did you mean"),
        (["--stages", "evaluate", "--compare", "evaluate.batch_size"], "--compare takes"),
        (["--stages", "evaluat", "--compare", "malloc"], "has no evaluat"),
    ],
)
def test_the_stage_bench_refuses_what_it_cannot_run_before_any_stage(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    trained_project_files(tmp_path)  # enough for its check of the project
    shutil.copy(ROOT / "dvc.yaml", tmp_path)  # where it finds the stages
    parser = stage_times.build_parser()
    parsed = parser.parse_args(["--project", str(tmp_path), *args])
    with pytest.raises(SystemExit):
        stage_times.check_arguments(parser, parsed)
    assert message in capsys.readouterr().err


@pytest.mark.slow  # make_submission once
def test_the_stage_bench_puts_params_back_when_a_stage_fails(trained_demo: Path) -> None:
    params = (trained_demo / "params.yaml").read_bytes()
    compare = "submission.labels_file=auto,no_such_labels.csv"  # the second must exist
    result = run_stage_times(trained_demo, "--stages", "make_submission", "--compare", compare)
    assert result.returncode == 1
    assert "stage make_submission failed under submission.labels_file=no_such" in result.stderr
    assert (trained_demo / "params.yaml").read_bytes() == params
