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

from imgclf.atomic import atomic_path


def save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def fingerprint(stage_params: dict[str, Any], data_fingerprint: str) -> str:
    """Identifies what a training run computes: a checkpoint from another one is not resumed."""
    text = json.dumps({"params": stage_params, "data": data_fingerprint}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
