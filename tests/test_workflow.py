"""The pull-request workflow cannot run here; it must at least call the commands tested here."""

from __future__ import annotations

import re

from ruamel.yaml import YAML

from tests.conftest import ROOT


def test_the_review_workflow_runs_the_pipeline_and_the_tested_review_command() -> None:
    workflow = YAML(typ="safe", pure=True).load(
        (ROOT / ".github" / "workflows" / "review.yml").read_text()
    )
    assert workflow["on"] == "pull_request"
    commands = [step["run"] for step in workflow["jobs"]["review"]["steps"] if "run" in step]
    assert commands[0] == "make demo"
    assert commands[1].startswith("make review REV=")
    assert "review/report.md" in commands[-1]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(
        r"^review:.*\n\tpython -m imgclf\.review --rev \$\(REV\) --out review$",
        makefile,
        re.MULTILINE,
    )
