"""What a reviewer looks at, for real on one tiny pipeline run: the pictures, `dvc plots show`
and the review's `dvc plots diff` drawn by headless Chromium with no network (the project's
page template carries the chart libraries), and the review report against the last commit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from ruamel.yaml import YAML

from bench.workspace import write_params
from imgclf.review import PREDICTIONS_LISTED, read_predictions
from tests.conftest import ROOT, assert_legible_png, run

pytestmark = pytest.mark.slow

PICTURES = [
    plot
    for plot in YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())["plots"]
    if isinstance(plot, str) and plot.endswith(".png")
]


@pytest.fixture(scope="module")
def project(repro_copy: Path) -> Path:
    """The pipeline run and committed, then an experiment that changes evaluation only:
    the workspace differs from HEAD in a parameter, metrics and pictures, not in training."""
    run(["dvc", "exp", "run", "-S", "evaluate.tta_flip=true"], repro_copy)
    return repro_copy


def test_every_picture_exists_and_is_legible(project: Path) -> None:
    names = {Path(picture).name for picture in PICTURES}
    for prefix in ("learning_curves_", "confusion_", "mistakes_"):
        assert {f"{prefix}scratch.png", f"{prefix}transfer.png"} <= names, prefix
    assert {"per_class_scores.png", "class_counts.png", "samples.png"} <= names
    for picture in PICTURES:
        assert_legible_png(project / picture)


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a local page with the network cut off, its console logged to
    stderr: no host name resolves, and anything else goes to a proxy where nothing listens."""
    browser = shutil.which("chromium")
    assert browser, "headless tests need Debian's chromium package (`make chromium` installs it)"
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=http://127.0.0.1:9",  # the discard port: refused
            "--proxy-bypass-list=<-loopback>",  # the proxy for 127.0.0.1 and localhost too
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",  # until Vega's asynchronous rendering is done
            "--window-size=1400,1000",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def assert_every_chart_draws(page: Path, tmp_path: Path) -> int:
    """Every Vega chart of a DVC page drawn in Chromium with no network; how many there are."""
    charts = page.read_text().count("vegaEmbed('#")
    dom = chromium(page, tmp_path, "--dump-dom")
    errors = [
        line
        for line in dom.stderr.splitlines()
        if ":CONSOLE" in line and re.search(r"Uncaught|Error", line)
    ]
    assert not errors, "\n".join(errors)
    # Vega-Embed draws each chart as an SVG of class "marks" inside its div.
    body = dom.stdout.split("</head>", 1)[1]
    assert body.count('class="marks"') == charts, "a chart was not drawn"
    return charts


def test_dvc_plots_show_draws_every_chart_in_chromium(project: Path, tmp_path: Path) -> None:
    """With the project's own .dvc/config: its page template, nothing passed by the test."""
    run(["dvc", "plots", "show", "-o", "page"], project)
    page = project / "page" / "index.html"
    html = page.read_text()
    assert "cdn.jsdelivr.net" not in html
    assert html.count('<img src="static/') == len(PICTURES)
    assert assert_every_chart_draws(page, tmp_path) >= 8

    screenshot = tmp_path / "page.png"
    chromium(page, tmp_path, f"--screenshot={screenshot}")
    with Image.open(screenshot) as image:
        assert image.size == (1400, 1000)
        # The charts come first on DVC's page, images after them.
        top = image.convert("L").crop((0, 0, 1400, 400))
        low, high = top.getextrema()
    assert high - low > 100, "the charts at the top of the page are blank"


def test_review_report_compares_the_workspace_with_a_revision(
    project: Path, tmp_path: Path
) -> None:
    run([sys.executable, "-m", "imgclf.review", "--rev", "HEAD", "--out", "review"], project)
    report = (project / "review" / "report.md").read_text()
    parameters, metrics, paired, plots = (
        report.split("## Parameters")[1].split("## Metrics")[0],
        report.split("## Metrics")[1].split("## Signal or noise")[0],
        report.split("## Signal or noise")[1].split("## Plots")[0],
        report.split("## Plots")[1],
    )
    assert "evaluate.tta_flip" in parameters and "True" in parameters
    assert "metrics/evaluate.json" in metrics and "scratch.test_loss" in metrics
    assert "train_loss" not in metrics  # training did not run again
    assert "on the same 270 test images" in paired
    weights = (
        "Weights (their SHA-256 in `metrics/provenance/`): scratch the same, transfer the same"
    )
    assert weights in paired  # only evaluation ran again
    committed = run(["git", "show", "HEAD:metrics/test_predictions.csv"], project).stdout
    predicted_then = read_predictions(committed)
    predicted_now = read_predictions((project / "metrics/test_predictions.csv").read_text())
    changed = sum(
        predicted_then[path][model] != row[model]
        for path, row in predicted_now.items()
        for model in row
        if model != "label"
    )
    if changed:
        assert f"Test images whose predicted class changed: {changed}" in paired
        rows = re.findall(r"^\| \w+ \| `", paired, re.MULTILINE)
        assert len(rows) == min(changed, PREDICTIONS_LISTED)
    else:
        assert "No test image's predicted class changed." in paired
    for model in ("scratch", "transfer"):
        row = next(line for line in paired.splitlines() if line.startswith(f"| {model} |"))
        before, now, only_before, only_now = (int(cell) for cell in row.split("|")[2:6])
        assert now - before == only_now - only_before
        assert re.search(r"within noise|beyond noise|the same images", row), row
    # The charts of both revisions, drawn offline.
    assert assert_every_chart_draws(project / "review" / "plots" / "index.html", tmp_path) >= 8
    assert "(plots/index.html)" in plots
    images = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", plots)
    shown = {alt.split(",")[0] for alt, _ in images}
    assert "plots/mistakes_scratch.png" in shown
    assert not shown & {"plots/samples.png", "plots/learning_curves_scratch.png"}, "unchanged"
    for _, link in images:
        assert_legible_png(project / "review" / link)


def test_review_refuses_outputs_older_than_the_parameters(project: Path) -> None:
    params = project / "params.yaml"
    committed = params.read_text()
    write_params(params, params, {"train.lr": 0.5})
    try:
        result = run(
            [sys.executable, "-m", "imgclf.review", "--out", "stale"], project, check=False
        )
    finally:
        params.write_text(committed)
    assert result.returncode == 1
    assert "train_scratch: params.yaml:train;" in result.stderr  # the section it reads
    assert result.stderr.strip().endswith("run `dvc repro` first")
    assert not (project / "stale").exists()


def test_review_of_an_unknown_revision_is_one_line(project: Path) -> None:
    result = run(
        [sys.executable, "-m", "imgclf.review", "--rev", "no-such-branch", "--out", "unknown"],
        project,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "review: 'no-such-branch' is not a git revision here: name a branch, tag or commit "
        "(make review REV=main)"
    ]
    assert not (project / "unknown").exists()
