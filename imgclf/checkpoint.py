"""Checkpoints: the best model for the later stages, and a resumable one for after a crash."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from imgclf.atomic import atomic_open

LIBRARY = Path(__file__).parent


def save(path: Path, payload: dict[str, Any]) -> None:
    # Into an open file: given a path, torch.save names the archive after the (temporary,
    # random) file name, and the same weights would not give the same bytes.
    with atomic_open(path, "wb") as file:
        torch.save(payload, file)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def fingerprint(stage_params: dict[str, Any], data_fingerprint: str) -> str:
    """Identifies what a training run computes (parameters, data and the library's code):
    a checkpoint of another run is never resumed from."""
    digest = hashlib.sha256()
    digest.update(json.dumps([stage_params, data_fingerprint], sort_keys=True).encode())
    for source in sorted(LIBRARY.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def provenance(stage_params: dict[str, Any], data_fingerprint: str) -> dict[str, Any]:
    """What a checkpoint came from: parameters, data, code version and library versions."""
    return {
        "params": stage_params,
        "data_sha256": data_fingerprint,
        "git_commit": _git_commit(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
        },
    }


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()
