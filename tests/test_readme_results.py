"""The table of cpu-profile runs in bench/results/README.md says what each run's own report
beside it says: a figure copied wrong, or a report rewritten without the table, fails here."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

RESULTS = ROOT / "bench/results"
MODELS = ("scratch", "transfer", "ensemble")


def runs_table_rows() -> dict[str, dict[str, str]]:
    """The runs table's rows, each named by its folder: folder -> model (and minutes) -> cell."""
    rows = {}
    for line in (RESULTS / "README.md").read_text().splitlines():
        match = re.match(r"\| `([\w-]+)` \|", line)
        if match:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[match[1]] = dict(zip((*MODELS, "minutes"), cells[3:7], strict=True))
    return rows


def reported(folder: Path) -> dict[str, str]:
    """Each model's test accuracy and the whole pipeline's minutes, as its results.md gives them."""
    report = (folder / "results.md").read_text()
    figures = {}
    for model in MODELS:
        match = re.search(rf"^\| {model}\b[^|]*\| (\d+\.\d+)%", report, re.MULTILINE)
        if match:
            figures[model] = match[1]
    pipeline = r"^Whole pipeline \(prepare to submission(?: and the export)?\): (\d+\.\d) min"
    minutes = re.search(pipeline, report, re.MULTILINE)
    if minutes:
        figures["minutes"] = minutes[1]
    return figures


def test_the_rows_and_the_run_folders_are_the_same_runs() -> None:
    cpu_runs = {folder.name for folder in RESULTS.glob("cpu*") if (folder / "results.md").exists()}
    rows = set(runs_table_rows())
    assert not rows - cpu_runs, f"rows with no run folder (and results.md): {rows - cpu_runs}"
    assert not cpu_runs - rows, f"run folders with no row: {cpu_runs - rows}"


def test_each_row_gives_its_reports_figures() -> None:
    for folder, cells in runs_table_rows().items():
        figures = reported(RESULTS / folder)
        assert {"scratch", "transfer"} <= set(figures), f"{folder}/results.md: no model rows read"
        for key, figure in figures.items():
            cell = cells[key].replace("*", "").strip()
            assert cell.startswith(figure), f"runs table, row {folder}, {key}: {cell!r} != {figure}"
