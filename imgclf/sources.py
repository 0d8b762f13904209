"""The project's source files a stage runs: its module and every project module it imports,
transitively, found by reading the imports (also those inside functions). dvc.yaml lists
exactly these as the stage's deps (tests/test_dvc_yaml.py checks), and the training stages
hash them into their provenance, so a change reruns a stage exactly when it changes its code."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("imgclf", "stages")


def stage_sources(stage: str) -> list[str]:
    """The files of `python -m stages.<stage>`, sorted, relative to the project (as dvc.yaml
    names them)."""
    entry = ROOT / "stages" / f"{stage}.py"
    return sorted(path.relative_to(ROOT).as_posix() for path in _closure(entry))


def stage_code_digest(stage: str) -> str:
    """SHA-256 of the names and contents of a stage's source files."""
    digest = hashlib.sha256()
    for name in stage_sources(stage):
        digest.update(name.encode() + b"\0")
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _closure(entry: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imported_files(path))
    return seen


def _imported_files(path: Path) -> set[Path]:
    """Project files `path` imports, and the packages' __init__ files they pass through."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0] not in PACKAGES:
            continue
        for end in range(1, len(parts) + 1):
            file = _module_file(parts[:end])
            if file:
                found.add(file)
    return found


def _module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None
