"""Where the stages read and write; dvc.yaml declares the same paths as deps and outs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

ModelName = Literal["scratch", "transfer"]
MODEL_NAMES: tuple[ModelName, ...] = ("scratch", "transfer")

VALIDATED = Path("data/validated.json")  # what validate found: prepare runs after it
PREPARED = Path("data/prepared")
CACHE = PREPARED / "images.npy"
THUMBNAILS = PREPARED / "thumbnails.npy"  # for near duplicates, at a fixed size
MANIFEST = PREPARED / "manifest.csv"
REJECTED = PREPARED / "rejected.csv"
SPLIT = Path("data/split.csv")
CHECK_DIR = Path("data/check")
SUBMISSION = Path("data/submission.csv")

MODELS = Path("models")
RESUME = MODELS / "resume"  # not a DVC output: DVC must never delete it before a rerun
EXPORT = MODELS / "export"  # the submitted model as ONNX: one folder, whichever model it is
METRICS = Path("metrics")
TEST_PREDICTIONS = METRICS / "test_predictions.csv"  # per image: the review pairs revisions
PLOTS = Path("plots")


def training_stage(model: ModelName) -> str:
    return f"train_{model}"


def checkpoint(model: ModelName) -> Path:
    return MODELS / f"{model}.pt"


def exported(model: str) -> Path:
    """The ONNX file of `model`; its model card is beside it (`.json`)."""
    return EXPORT / f"{model}.onnx"


def resume_checkpoint(model: ModelName) -> Path:
    return RESUME / f"{model}.pt"


def history(model: ModelName) -> Path:
    return PLOTS / "history" / f"{model}.csv"


def train_metrics(model: ModelName) -> Path:
    return METRICS / f"{training_stage(model)}.json"


def provenance(stage: str) -> Path:
    """What a stage's results came from (digests, versions, CPU settings): in git, no metric."""
    return METRICS / "provenance" / f"{stage}.json"


def timing(stage: str) -> Path:
    """How long a stage took and how much memory: different at every run, so not in git."""
    return METRICS / "timing" / f"{stage}.json"
