"""DVC's own charts, as DVC draws them from dvc.yaml's `plots:` and the templates in .dvc/plots:
`dvc plots diff --json` for real, in a small repository holding just those definitions, their
CSV files and the templates, so it takes seconds and leaves this tree alone."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT, run

SCORES = ["per_class_precision", "per_class_recall", "per_class_f1"]
BARS = [*SCORES, "class_counts"]
REVS = {"HEAD", "workspace"}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def data_plots() -> list[dict[str, Any]]:
    """dvc.yaml's data-series plots (the pictures are drawn by the stages, not by DVC)."""
    plots = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())["plots"]
    return [plot for plot in plots if isinstance(plot, dict)]


def sources(plots: list[dict[str, Any]]) -> set[str]:
    return {path for plot in plots for (definition,) in [plot.values()] for path in definition["y"]}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each data plot's Vega-Lite spec from `dvc plots diff HEAD --json`, after a commit of the
    project's CSV files and a change of one precision in the workspace."""
    project = tmp_path_factory.mktemp("plots") / "project"
    project.mkdir()
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)
    plots = data_plots()
    with (project / "dvc.yaml").open("w") as file:
        YAML().dump({"plots": plots}, file)
    for path in sources(plots):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, project / path)
    shutil.copytree(ROOT / ".dvc" / "plots", project / ".dvc" / "plots")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "plots"], project, env=GIT_ENV)

    scores = project / "plots/per_class/scratch.csv"
    with scores.open(newline="") as file:
        rows = list(csv.DictReader(file))
    rows[0]["precision"] = "0.25"
    with scores.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    printed = run(["dvc", "plots", "diff", "HEAD", "--json"], project).stdout
    data = json.loads(printed)["data"]
    assert "errors" not in json.loads(printed), printed
    specs = {}
    for plot in plots:
        (name,) = plot
        (entry,) = data[name]
        assert entry["type"] == "vega" and set(entry["revisions"]) == REVS, name
        specs[name] = entry["content"]
    return specs


def encodings(spec: Any, channel: str) -> Iterator[dict[str, Any]]:
    """Every encoding of `channel` anywhere in a spec (layers included)."""
    if isinstance(spec, dict):
        if isinstance(spec.get("encoding"), dict) and channel in spec["encoding"]:
            yield spec["encoding"][channel]
        for key, value in spec.items():
            if key != "data":
                yield from encodings(value, channel)
    elif isinstance(spec, list):
        for value in spec:
            yield from encodings(value, channel)


@pytest.mark.parametrize("name", BARS)
def test_bars_start_at_zero(drawn: dict[str, dict[str, Any]], name: str) -> None:
    spec = drawn[name]
    assert spec["mark"]["type"] == "bar"
    (x,) = encodings(spec, "x")
    assert x["type"] == "quantitative"
    assert x["scale"]["zero"] is True, f"{name}: the bars start at the data's minimum"
    if name in SCORES:
        assert x["scale"]["domain"] == [0, 1], name


@pytest.mark.parametrize("name", BARS)
def test_bars_show_both_revisions(drawn: dict[str, dict[str, Any]], name: str) -> None:
    spec = drawn[name]
    assert spec["encoding"]["color"]["field"] == "rev"
    assert set(spec["encoding"]["color"]["scale"]["domain"]) == REVS
    assert spec["encoding"]["yOffset"]["field"] == "rev"
    values = spec["data"]["values"]
    assert {row["rev"] for row in values} == REVS
    if name == "per_class_precision":  # the workspace's change beside the commit's value
        with (ROOT / "plots/per_class/scratch.csv").open(newline="") as file:
            committed = next(csv.DictReader(file))
        first = {
            row["rev"]: row["precision"]
            for row in values
            if row["filename"] == "scratch.csv" and row["class"] == committed["class"]
        }
        assert first == {"HEAD": committed["precision"], "workspace": "0.25"}


@pytest.mark.parametrize(("name", "quantity"), [("loss", "loss"), ("accuracy", "accuracy")])
def test_curves_name_their_y_axis(
    drawn: dict[str, dict[str, Any]], name: str, quantity: str
) -> None:
    titles = {y.get("title") for y in encodings(drawn[name], "y")}
    assert len(titles) == 1, titles
    (title,) = titles
    assert quantity in title, f"{name}: the y axis is labelled {title!r}"
