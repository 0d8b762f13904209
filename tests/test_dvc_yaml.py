"""dvc.yaml lists, for every stage, each project module the stage imports (found by reading
the imports, transitively), so editing any of them reruns exactly the stages that use it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from imgclf import paths
from imgclf.checkpoint import code_digest
from imgclf.paths import MODEL_NAMES
from tests.conftest import ROOT, run

PACKAGES = ("imgclf", "stages")


def module_file(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """Project files `path` imports, and the packages' __init__ files they pass through."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            file = module_file(".".join(parts[:end]))
            if file:
                found.add(file)
    return found


def closure(entry: Path) -> set[str]:
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_files(path))
    return {path.relative_to(ROOT).as_posix() for path in seen}


STAGES = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_imported_project_module_is_a_dependency(name: str) -> None:
    stage = STAGES[name]
    entry = ROOT / "stages" / f"{name}.py"
    assert stage["cmd"] == f"python -m stages.{name}"
    deps = set(stage["deps"])
    missing = closure(entry) - deps
    assert not missing, f"stage {name}: add to its deps in dvc.yaml: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_no_stage_lists_a_module_it_does_not_import(name: str) -> None:
    deps = {d for d in STAGES[name]["deps"] if d.endswith(".py")}
    extra = deps - closure(ROOT / "stages" / f"{name}.py")
    assert not extra, f"stage {name} lists modules it never imports: {sorted(extra)}"


def test_the_committed_lock_is_of_this_code_and_these_parameters() -> None:
    """dvc.lock, committed with the demo's outputs, records the hash of every file and
    parameter each stage read: a library change without a demo rerun would leave a fresh
    clone's `make demo` changing dvc.lock and the provenance (`git status` not clean).
    Outputs a clean clone lacks (DVC's cache is not in git) are 'deleted', not 'modified'."""
    result = run(["dvc", "status", "--json"], ROOT)
    stale = [
        f"{stage}: {changed}"
        for stage, entries in json.loads(result.stdout).items()
        for entry in entries
        if isinstance(entry, dict)
        for changed in modified(entry.get("changed deps", {}))
    ]
    assert stale == [], "rerun the demo (`make demo`) and commit dvc.lock and metrics/"


def test_the_committed_training_provenance_is_of_this_library() -> None:
    """The training stages record the SHA-256 of the whole library, but DVC reruns them only
    for the modules they import: after a change to another library file (prepare.py), the
    committed provenance and checkpoints are not what a fresh clone's `make demo` writes."""
    for name in MODEL_NAMES:
        provenance = json.loads((ROOT / paths.provenance(f"train_{name}")).read_text())
        assert provenance[name]["code_sha256"] == code_digest(), (
            "retrain the demo: `dvc repro -f -s train_scratch && dvc repro -f -s train_transfer "
            "&& dvc repro`, then commit dvc.lock and metrics/"
        )


def modified(deps: dict) -> list[str]:
    """The files and parameters in `dvc status`'s changed deps that are there but differ."""
    found = []
    for name, status in deps.items():
        if isinstance(status, dict):  # a params file: each parameter's status
            found += [f"{name}:{key}" for key, value in status.items() if value == "modified"]
        elif status == "modified":
            found.append(name)
    return found
