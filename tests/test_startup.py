"""Each stage runs in a process of its own, so what its imports cost is paid at every stage of
every `dvc repro`. torchvision (about 2 s to import on two cores) is for training only, and
scikit-learn with SciPy (about 1 s) for scoring only: the stages that only run a trained model
start without them. timm (and torchvision with it) is for the recipe's ingredients that are
off by default: the training stages start without it. DVC, around them, parses its YAML files
many times in each command: with libyaml's parser, not ruamel.yaml's pure-Python one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.dvc_yaml import HIDE_C_PARSER, c_parser_installed
from tests.conftest import ROOT

RUN_A_MODEL = ("stages.make_submission", "stages.export", "imgclf.classify")
TRAIN = ("stages.train_scratch", "stages.train_transfer")


@pytest.mark.parametrize(
    ("modules", "not_imported"),
    [
        (RUN_A_MODEL, ("torchvision", "sklearn", "scipy")),
        (("stages.evaluate",), ("torchvision",)),
        (TRAIN, ("timm", "torchvision")),
    ],
)
def test_a_stage_starts_without_the_libraries_it_has_no_use_for(
    modules: tuple[str, ...], not_imported: tuple[str, ...]
) -> None:
    code = (
        f"import sys, {', '.join(modules)}; "
        f"print(*(name for name in {not_imported!r} if name in sys.modules))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not imported, f"importing {', '.join(modules)} imports {', '.join(imported)}"


def test_dvc_parses_yaml_with_libyaml() -> None:
    # DVC loads with YAML(typ="safe"), which takes ruamel.yaml.clib's parser where it is
    # installed (requirements.txt): a `dvc status` took 0.99 s with it, 1.18 s without
    # (bench/dvc_yaml.py, bench/results/dvc-yaml-amd-zen3-2026-12-07.md).
    assert c_parser_installed()


@pytest.mark.slow
def test_the_dvc_yaml_bench_times_dvc_with_libyaml_and_with_it_hidden(
    repro_project: Path, tmp_path: Path
) -> None:
    hidden = "import sys; " + HIDE_C_PARSER + "from bench.dvc_yaml import c_parser_installed; "
    parser = [sys.executable, "-c", hidden + "print(c_parser_installed())"]
    found = subprocess.run(parser, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert found.split() == ["False"]

    out = tmp_path / "dvc_yaml.md"
    bench = [sys.executable, "bench/dvc_yaml.py", "--project", str(repro_project)]
    bench += ["--command", "status", "--repeats", "1", "--out", str(out)]
    subprocess.run(bench, cwd=ROOT, check=True, capture_output=True)
    row = next(line for line in out.read_text().splitlines() if line.startswith("| `dvc status`"))
    with_c_parser, without, ratio = (float(cell) for cell in row.split("|")[2:5])
    assert abs(ratio - with_c_parser / without) < 0.02  # of the seconds rounded to 0.01
    assert "Command: `python bench/dvc_yaml.py --project " in out.read_text()
