"""dvc.yaml lists, for every stage, each project module the stage imports (found by reading
the imports, transitively), so editing any of them reruns exactly the stages that use it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT

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
