"""A training stage's code digest covers exactly the files the stage runs (what DVC reruns it
for): a change to another module leaves the digest, and so the committed provenance, alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imgclf import sources
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for package in sources.PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    monkeypatch.setattr(sources, "ROOT", tmp_path)
    return tmp_path


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_module_the_stage_does_not_import_leaves_its_digest(project: Path) -> None:
    before = sources.stage_code_digest("train_scratch")
    prepare_before = sources.stage_code_digest("prepare")
    append(project / "imgclf/prepare.py", "\n# a comment\n")
    assert "imgclf/prepare.py" not in sources.stage_sources("train_scratch")
    assert sources.stage_code_digest("train_scratch") == before
    assert sources.stage_code_digest("prepare") != prepare_before


def test_a_module_imported_indirectly_changes_its_digest(project: Path) -> None:
    before = sources.stage_code_digest("train_scratch")
    assert "imgclf/atomic.py" in sources.stage_sources("train_scratch")  # via checkpoint.py
    append(project / "imgclf/atomic.py", "\n# a comment\n")
    assert sources.stage_code_digest("train_scratch") != before


def test_an_import_inside_a_function_is_followed(project: Path) -> None:
    assert "imgclf/classify.py" not in sources.stage_sources("train_scratch")
    append(project / "stages/train_scratch.py", "\n\ndef later():\n    import imgclf.classify\n")
    assert "imgclf/classify.py" in sources.stage_sources("train_scratch")
