"""The pull-request workflow cannot run here; it must at least call the commands tested here."""

from __future__ import annotations

import json
import re

from ruamel.yaml import YAML

from bench.workspace import flatten
from imgclf.config import read_yaml
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


def test_make_exps_keeps_every_parameter_and_drops_every_metric_but_the_test_accuracies() -> None:
    # dvc exp show --drop drops the columns its pattern re.match()es: a parameter whose name
    # looks like a metric's (split.max_train_per_class, split.val_fraction) must stay.
    makefile = (ROOT / "Makefile").read_text()
    pattern = re.search(r"^EXP_COLUMNS_DROPPED := (.*)$", makefile, re.MULTILINE)
    assert pattern, "the Makefile names the columns `make exps` drops"
    dropped = re.compile(pattern.group(1).replace("$$", "$"))  # make's escape of $
    parameters = flatten(read_yaml(ROOT / "params.yaml"))
    assert [key for key in parameters if dropped.match(key)] == []
    dvc_yaml = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())
    files = [
        next(iter(entry))
        for stage in dvc_yaml["stages"].values()
        for entry in stage.get("metrics", [])
    ]
    assert len(files) >= 6, files
    metrics = {}
    for name in files:
        metrics |= flatten(json.loads((ROOT / name).read_text()))
    # A metric named as a parameter (submission.model) is shown under its file's path.
    shown = [name if name not in parameters else "metrics/..." for name in metrics]
    kept = sorted(name for name in shown if not dropped.match(name))
    assert kept == ["ensemble.test_acc", "scratch.test_acc", "transfer.test_acc"]
