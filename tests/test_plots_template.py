"""The page `dvc plots show` and `dvc plots diff` fill carries its chart libraries, and is the
one the pinned packages make; tests/test_reports.py draws it in Chromium with no network."""

from __future__ import annotations

import sys
from pathlib import Path

from scripts.make_plots_template import DEFAULT_OUT
from tests.conftest import ROOT, run


def test_the_committed_page_is_what_the_script_writes_from_the_pins(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    run([sys.executable, "-m", "scripts.make_plots_template", "--out", str(out)], ROOT)
    committed = (ROOT / DEFAULT_OUT).read_bytes()
    assert out.read_bytes() == committed, "stale: run python -m scripts.make_plots_template"
    assert b"{plot_divs}" in committed and b"cdn.jsdelivr.net" not in committed


def test_dvc_is_configured_to_use_it() -> None:
    value = run(["dvc", "config", "plots.html_template"], ROOT).stdout.strip()
    assert (ROOT / ".dvc" / value).resolve() == (ROOT / DEFAULT_OUT).resolve()
