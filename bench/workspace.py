"""A copy of the project in a fresh git + DVC repository, with some parameters changed: where
benchmarks (and the end-to-end tests) run the real pipeline without touching the user's."""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML

from imgclf import paths
from imgclf.config import Params, describe, read_yaml
from imgclf.errors import UserError

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


def tool_parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark tool's parser: its --help gives the tool's whole docstring, as written."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    """--project, as the benchmarks that work in a trained project take it."""
    parser.add_argument(
        "--project",
        type=project_folder,
        required=True,
        metavar="DIR",
        help="a trained project: a bench/run.py --work folder's project/",
    )


def project_folder(text: str) -> Path:
    """An argparse type: a trained project's folder, which must exist."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(
            f"no such project folder: {text} (a bench/run.py --work folder's project/)"
        )
    return Path(text)


# What a project whose data is prepared and split holds, relative to its root: what a
# training stage reads.
SPLIT_PROJECT_FILES = (paths.MANIFEST, paths.SPLIT, paths.CACHE)
# What a project whose models are trained holds.
TRAINED_PROJECT_FILES = (*SPLIT_PROJECT_FILES, *map(paths.checkpoint, paths.MODEL_NAMES))


def check_project(
    folder: Path, trained: bool = True, retrained: paths.ModelName | None = None
) -> None:
    """Stop with one line, before any work, unless `folder` is a project (its params.yaml)
    whose models are trained (with `trained`), saying what to pass or run instead. The model
    `retrained` names may lack its checkpoint: the caller trains it again, and a run of it
    that was stopped leaves none (DVC deletes a stage's outputs before it runs)."""
    if not (folder / "params.yaml").is_file():
        if (folder / "project").is_dir():
            raise UserError(
                f"{folder} is not a project but holds one (a bench/run.py --work folder): "
                f"pass {folder / 'project'}"
            )
        raise UserError(
            f"{folder} is not a project folder (no params.yaml): pass a bench/run.py --work "
            "folder's project/, or a project whose models are trained"
        )
    not_needed = paths.checkpoint(retrained) if retrained else None
    missing = missing_files(folder, [path for path in TRAINED_PROJECT_FILES if path != not_needed])
    if trained and missing:
        raise UserError(
            f"{folder} has no trained models ({', '.join(missing)} missing): run `dvc repro` "
            "there first"
        )


def check_split_project(folder: Path) -> None:
    """Stop with one line, before any work, unless `folder` is a project (as check_project
    asks) whose data is prepared and split: what a training stage reads."""
    check_project(folder, trained=False)
    missing = missing_files(folder, SPLIT_PROJECT_FILES)
    if missing:
        raise UserError(
            f"{folder} has no prepared and split data ({', '.join(missing)} missing): run "
            "`dvc repro split` there first"
        )


def missing_files(folder: Path, names: Iterable[Path]) -> list[str]:
    """Those of `names` (relative to `folder`) that `folder` lacks."""
    return [str(name) for name in names if not (folder / name).exists()]


def load_profile(name: str) -> dict[str, Any]:
    """A profile's parameters as dotted keys: bench/profiles/<name>.yaml, or a YAML file."""
    path = PROFILES / f"{name}.yaml"
    if not path.exists() and not Path(name).is_file():
        names = ", ".join(sorted(profile.stem for profile in PROFILES.glob("*.yaml")))
        raise UserError(
            f"no profile {name}: give one of {names} (bench/profiles/), or a YAML file of "
            "params.yaml keys"
        )
    return flatten(read_yaml(path if path.exists() else Path(name)) or {})


def check_keys(keys: list[str], where: str) -> None:
    """Stop with one line if any of the dotted `keys` (from `where`, e.g. "--set") is not a
    key of the project's params.yaml, with the closest key for each."""
    known = list(flatten(read_yaml(ROOT / "params.yaml")))
    unknown = []
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            unknown.append(f"{key} (did you mean {close[0]}?)" if close else key)
    if unknown:
        raise UserError(f"{where}: not keys of params.yaml: {', '.join(unknown)}")


def check_params(changes: dict[str, Any], where: str) -> None:
    """Stop with one line if params.yaml with the dotted-key `changes` made is not valid, as
    the pipeline's own validation checks it (their keys checked first: `check_keys`)."""
    tree = read_yaml(ROOT / "params.yaml")
    for key, value in changes.items():
        set_key(tree, key, value)
    try:
        Params.model_validate(tree)
    except ValidationError as error:
        raise UserError(f"{where}: {describe(error)}") from None


def settings_with_known_keys(settings: list[str]) -> dict[str, Any]:
    """The --set KEY=VALUE settings as dotted keys and values, each key one of params.yaml's
    (the values are checked with whatever else is changed: `check_params`)."""
    malformed = [text for text in settings if "=" not in text or not text.partition("=")[0]]
    if malformed:
        raise UserError(f"--set {malformed[0]}: write KEY=VALUE, e.g. --set train.epochs=1")
    overrides = parse_settings(settings)
    check_keys(list(overrides), "--set")
    return overrides


def checked_profile(name: str, settings: list[str]) -> dict:
    """The profile with the --set settings over it, every key and value checked against
    params.yaml."""
    profile = load_profile(name)
    check_keys(list(profile), f"profile {name}")
    overrides = settings_with_known_keys(settings)
    check_params(profile | overrides, f"profile {name} with --set")
    return profile | overrides


LAYOUT = (
    "train/<class>/*.jpg, optionally val/<class>/, test/<class>/ and predict/ "
    "(README, 'Your own data')"
)


def check_data(data: Path, profile: dict) -> None:
    """--data must be a folder with the training folder the parameters name, of classes."""
    if not data.is_dir():
        what = "is a file" if data.exists() else "does not exist"
        raise UserError(f"--data {data} {what}: give a folder laid out as {LAYOUT}")
    train_dir = (
        profile.get("data.train_dir") or read_yaml(ROOT / "params.yaml")["data"]["train_dir"]
    )
    train = data / train_dir
    if not train.is_dir() or not any(path.is_dir() for path in train.iterdir()):
        raise UserError(
            f"--data {data} has no {train_dir}/<class>/ folders: give a folder laid out as {LAYOUT}"
        )


def add_run_arguments(parser: argparse.ArgumentParser, default_profile: str) -> None:
    """--data, --profile and --set, as the benchmarks that run a profile take them."""
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="the data set: train/<class>/*, test/<class>/*",
    )
    parser.add_argument(
        "--profile",
        default=default_profile,
        help="bench/profiles/<PROFILE>.yaml, or a YAML file of params.yaml keys "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the profile (one key each, repeatable)",
    )


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


def run_dvc(args: list[str], project: Path, launch: list[str] | None = None) -> None:
    """`dvc ARGS` in `project` (started by `launch` in place of `dvc`, if given), its output
    captured: if it fails, stop with one line naming it and the last line DVC wrote."""
    done = subprocess.run(
        [*(launch or ["dvc"]), *args], cwd=project, env=ENV, capture_output=True, text=True
    )
    if done.returncode:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"`{shlex.join(['dvc', *args])}` failed in {project}: {why}")


def require_dvc() -> None:
    """Stop with a message if dvc is not installed beside this Python."""
    if not shutil.which("dvc", path=ENV["PATH"]):
        raise SystemExit(
            "dvc is not installed here (`make setup` installs it); on a machine without it, "
            "bench/run.py and bench/throughput.py take --without-dvc"
        )


def git_state(root: Path = ROOT) -> str:
    """The commit `root` is checked out at and whether its tree has changes: for a report."""
    try:
        commit = git(["rev-parse", "HEAD"], root).strip()
        changed = git(["status", "--porcelain"], root).strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout (no commit to record)"
    return f"commit {commit}" + (" with uncommitted changes or new files" if changed else ", clean")


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
    require_dvc()
    git(["init", "-q", "-b", "main"], project)
    git(["config", "user.email", "bench@example.com"], project)
    git(["config", "user.name", "bench"], project)
    subprocess.run(["dvc", "init", "-q"], cwd=project, env=ENV, check=True)
    for name in DVC_FILES:
        copy(ROOT / name, project / name)
    git(["add", "-A"], project)
    git(["commit", "-q", "-m", "project"], project)
    return project
