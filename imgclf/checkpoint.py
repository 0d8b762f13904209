"""Checkpoints: the best model for the later stages, and a resumable one for after a crash."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgclf.atomic import atomic_open
from imgclf.paths import ModelName, training_stage
from imgclf.sources import stage_code_digest


def save(path: Path, payload: dict[str, Any]) -> None:
    # Into an open file: given a path, torch.save names the archive after the (temporary,
    # random) file name, and the same weights would not give the same bytes.
    with atomic_open(path, "wb") as file:
        torch.save(payload, file)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names and values: equal exactly when the weights are."""
    digest = hashlib.sha256()
    for name, tensor in weights.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def fingerprint(model: ModelName, stage_params: dict[str, Any], data_fingerprint: str) -> str:
    """Identifies what a training run computes (parameters, data and the stage's code): a
    checkpoint of another run is never resumed from."""
    identity = [stage_params, data_fingerprint, stage_code_digest(training_stage(model))]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def provenance(
    model: ModelName, stage_params: dict[str, Any], data_fingerprint: str
) -> dict[str, Any]:
    """What a checkpoint came from: parameters, data, the stage's code (its files, as DVC
    tracks them: a change elsewhere leaves it) and library versions. Nothing that
    differs between machines or commits of the same code, so that a rerun anywhere writes the
    same bytes (the commit is the one whose dvc.lock records this file)."""
    import torchvision  # here, not above: it takes seconds to import, and only training needs it

    return {
        "params": stage_params,
        "data_sha256": data_fingerprint,
        "code_sha256": stage_code_digest(training_stage(model)),
        "versions": {
            "python": ".".join(platform.python_version_tuple()[:2]),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
        },
    }
