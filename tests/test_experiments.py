"""`dvc exp run` as a user runs it, for real: a failed experiment stops with the project's one
line before DVC deletes any output, `-S` changes one line of params.yaml, and a folder of
one's own photos with no labels file runs to an unscored submission with no extra flags."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run
from tests.dirty import write_data_set

pytestmark = pytest.mark.slow

OUTPUT_FOLDERS = ["metrics", "models", "plots", "data/prepared", "data/check"]
OUTPUT_FILES = ["data/split.csv", "data/submission.csv", "data/validated.json"]


def outputs(project: Path) -> dict[str, str]:
    """SHA-256 of every stage output in the workspace."""
    files = [path for folder in OUTPUT_FOLDERS for path in (project / folder).rglob("*")]
    files += [project / name for name in OUTPUT_FILES]
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(files)
        if path.is_file() and "timing" not in path.parts
    }


@pytest.fixture(scope="module")
def project(repro_copy: Path) -> Path:
    """A project after a full `dvc repro`, committed."""
    return repro_copy


def restore_params(project: Path) -> None:
    """Put back the committed params.yaml the way the README says. After a failed `dvc exp
    run`, git's index can hold the changed file's timestamps with the committed content's
    hash, so `git checkout -- params.yaml` and `git status` believe it unchanged."""
    committed = run(["git", "show", "HEAD:params.yaml"], project).stdout
    (project / "params.yaml").write_text(committed)


def failed_experiment(project: Path, *settings: str) -> str:
    """Run `dvc exp run -S ...`, which must fail; its one error line from the project."""
    result = run(["dvc", "exp", "run", *settings], project, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (["-S", "train.batch_size=0"], "train.batch_size: Input should be greater than 0"),
        (["-S", "+train.lrr=0.1"], "train.lrr: unknown key (did you mean train.lr?)"),
        (["-S", "data.root=data/nowhere"], "data.root: the folder data/nowhere does not exist"),
        (["-S", "data.root=data/empty"], "no images found under data/empty"),
        (["-S", "submission.labels_file=truth.csv"], "data/demo/truth.csv does not exist"),
    ],
)
def test_a_failed_experiment_loses_nothing(project: Path, settings: list[str], words: str) -> None:
    for empty_class in ("data/empty/train/cats", "data/empty/train/dogs"):
        (project / empty_class).mkdir(parents=True, exist_ok=True)
    before = outputs(project)
    try:
        assert words in failed_experiment(project, *settings)
        assert outputs(project) == before
    finally:
        restore_params(project)


def test_a_broken_link_in_the_data_stops_with_its_name(project: Path) -> None:
    link = project / "data/demo/train/3/moved.png"
    link.symlink_to(project / "data/elsewhere.png")
    before = outputs(project)
    try:
        error = failed_experiment(project)
        assert "broken symbolic links" in error and "data/demo/train/3/moved.png" in error
        assert outputs(project) == before
    finally:
        link.unlink()


def test_set_changes_its_one_line_of_params_yaml(project: Path) -> None:
    committed = run(["git", "show", "HEAD:params.yaml"], project).stdout.splitlines()
    failed_experiment(project, "-S", "train.batch_size=0")
    try:
        now = (project / "params.yaml").read_text().splitlines()
    finally:
        restore_params(project)
    diff = list(difflib.unified_diff(committed, now, n=0, lineterm=""))
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in "+++---"]
    assert len(changed) == 2, diff
    assert changed[0].startswith("-  batch_size: 128") and changed[1].startswith("+  batch_size: 0")


def test_own_photos_without_labels_give_an_unscored_submission(project: Path) -> None:
    write_data_set(project / "data/mine", {"train/cats": 30, "train/dogs": 30, "predict": 7})
    try:
        result = run(["dvc", "exp", "run", "-S", "data.root=data/mine"], project)
        submission = json.loads((project / "metrics/submission.json").read_text())["submission"]
        assert submission == {"model": submission["model"], "images": 7, "scored": False}
        assert "unscored" in result.stdout
        for model in ("scratch", "transfer"):
            assert (project / f"models/{model}.pt").exists()
    finally:
        restore_params(project)
        run(["git", "checkout", "HEAD", "--", "."], project)
        run(["dvc", "checkout", "--force"], project)
