"""Each benchmark profile is a set of valid params.yaml keys: a misspelt key or a bad value
fails in the test suite, not at the next benchmark someone runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.workspace import PROFILES, flatten, load_profile, write_params
from imgclf.config import load_params
from tests.conftest import ROOT


@pytest.mark.parametrize("profile", sorted(path.stem for path in PROFILES.glob("*.yaml")))
def test_a_profile_applied_to_params_yaml_validates_and_keeps_its_values(
    profile: str, tmp_path: Path
) -> None:
    settings = load_profile(profile)
    write_params(ROOT / "params.yaml", tmp_path / "params.yaml", settings)
    loaded = flatten(load_params(tmp_path / "params.yaml").model_dump())
    assert {key: loaded[key] for key in settings} == settings
