"""A copy of the project in a fresh git + DVC repository, with some parameters changed: where
benchmarks (and the end-to-end tests) run the real pipeline without touching the user's."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from imgclf.config import read_yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "bench" / "profiles"
PROJECT_FILES = [
    "dvc.yaml",
    "params.yaml",
    "Makefile",
    "imgclf",
    "stages",
    "data/demo",
    ".gitignore",
]
# The project's DVC settings (the offline page of `dvc plots`, and the plot templates dvc.yaml
# names, among them), over `dvc init`'s.
DVC_FILES = [".dvc/config", ".dvc/plots_offline.html", ".dvc/plots"]
# dvc, and the `python` of the stages' commands, from the environment running this one.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def write_params(source: Path, target: Path, changes: dict[str, Any]) -> None:
    """`source` (a params.yaml) with the dotted-key `changes` made, written to `target` with
    its comments and layout kept, as `dvc exp run -S` writes it."""
    yaml = YAML()  # round trip
    tree = yaml.load(source.read_text())
    for key, value in changes.items():
        set_key(tree, key, value)
    with open(target, "w") as file:
        yaml.dump(tree, file)


def project_folder(text: str) -> Path:
    """An argparse type: a trained project's folder, which must exist."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(
            f"no such project folder: {text} (a bench/run.py --work folder's project/)"
        )
    return Path(text)


def load_profile(name: str) -> dict[str, Any]:
    """A profile's parameters as dotted keys: bench/profiles/<name>.yaml, or a YAML file."""
    path = PROFILES / f"{name}.yaml"
    return flatten(read_yaml(path if path.exists() else Path(name)))


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` arguments as dotted keys and values read as YAML ("false" is False)."""
    parsed = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        parsed[key] = YAML(typ="safe", pure=True).load(value)
    return parsed


def set_key(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree[part]
    tree[leaf] = value


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}"""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def copy(source: Path, target: Path) -> None:
    """A file, or a folder and everything in it (Python's caches left out)."""
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(source, target)


def git(args: list[str], cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def copy_project(project: Path, params: dict[str, Any], repository: bool = True) -> Path:
    """Copy the project into the new folder `project`, with the dotted-key `params` changed,
    as the first commit of a fresh git + DVC repository (dvc must be on PATH); with
    `repository` False, as plain files (for bench/without_dvc.py)."""
    project.mkdir(parents=True)
    for name in PROJECT_FILES:
        copy(ROOT / name, project / name)
    write_params(ROOT / "params.yaml", project / "params.yaml", params)
    if not repository:
        return project
    if not shutil.which("dvc", path=ENV["PATH"]):
        raise SystemExit(
            "dvc is not installed here (`make setup` installs it); on a machine without it, "
            "bench/run.py and bench/throughput.py take --without-dvc"
        )
    git(["init", "-q", "-b", "main"], project)
    git(["config", "user.email", "bench@example.com"], project)
    git(["config", "user.name", "bench"], project)
    subprocess.run(["dvc", "init", "-q"], cwd=project, env=ENV, check=True)
    for name in DVC_FILES:
        copy(ROOT / name, project / name)
    git(["add", "-A"], project)
    git(["commit", "-q", "-m", "project"], project)
    return project
