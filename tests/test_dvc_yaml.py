"""dvc.yaml lists, for every stage, each project module the stage imports (found by reading
the imports, transitively), so editing any of them reruns exactly the stages that use it."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from imgclf.review import stale_stages
from imgclf.sources import stage_sources
from tests.conftest import ROOT

STAGES = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_imported_project_module_is_a_dependency(name: str) -> None:
    stage = STAGES[name]
    assert stage["cmd"] == f"python -m stages.{name}"
    deps = set(stage["deps"])
    missing = set(stage_sources(name)) - deps
    assert not missing, f"stage {name}: add to its deps in dvc.yaml: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_no_stage_lists_a_module_it_does_not_import(name: str) -> None:
    deps = {d for d in STAGES[name]["deps"] if d.endswith(".py")}
    extra = deps - set(stage_sources(name))
    assert not extra, f"stage {name} lists modules it never imports: {sorted(extra)}"


def test_the_committed_lock_is_of_this_code_and_these_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dvc.lock, committed with the demo's outputs, records the hash of every file and
    parameter each stage read: a library change without a demo rerun would leave a fresh
    clone's `make demo` changing dvc.lock and the provenance (`git status` not clean).
    Outputs a clean clone lacks (DVC's cache is not in git) are 'deleted', not stale."""
    monkeypatch.chdir(ROOT)
    assert stale_stages() == [], "rerun the demo (`make demo`) and commit dvc.lock and metrics/"
