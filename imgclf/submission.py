"""make_submission: one CSV row per unlabelled image, with the chosen model's label."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from imgclf.config import DataParams, SubmissionParams
from imgclf.errors import UserError
from imgclf.paths import MODEL_NAMES, ModelName
from imgclf.samples import Sample

DEFAULT_LABELS_FILE = "predict_labels.csv"  # what submission.labels_file: auto looks for


def choose_model(choice: str, val_acc: dict[ModelName, float]) -> str:
    """`auto` takes the model with the better validation accuracy (transfer on a tie);
    `ensemble` both, their probabilities averaged (weighted by evaluate.ensemble_weights)."""
    if choice != "auto":
        return choice
    return max(reversed(MODEL_NAMES), key=lambda name: val_acc[name])


def submission_id(sample: Sample, id_from: str) -> str:
    path = PurePosixPath(sample.path)
    return {"stem": path.stem, "name": path.name}.get(id_from, sample.path)


def labels_file(data: DataParams, options: SubmissionParams) -> Path | None:
    """The file of true labels to score the submission against, or None: unscored.

    `auto` takes predict_labels.csv in data.root when it is there; a file the user named must
    exist. Either must have the submission's id and label columns. Only the file tree and the
    parameters are read, so this can stop a run before any training.
    """
    if options.labels_file is None:
        return None
    path = Path(data.root) / (
        DEFAULT_LABELS_FILE if options.labels_file == "auto" else options.labels_file
    )
    if not path.is_file():
        if options.labels_file == "auto":
            return None
        raise UserError(
            f"submission.labels_file: {path} does not exist; name a file in data.root, or set "
            "it to auto (score when predict_labels.csv is there) or empty (never score)"
        )
    with open(path, newline="") as file:
        header = next(csv.reader(file), [])
    missing = sorted({options.id_column, options.label_column} - set(header))
    if missing:
        raise UserError(
            f"submission.labels_file: {path} has no column {missing[0]!r} (its columns: "
            f"{', '.join(header) or 'none'}); they must match submission.id_column and "
            "submission.label_column"
        )
    return path


def score_against(
    rows: list[tuple[str, str]], path: Path, options: SubmissionParams
) -> dict[str, float | int]:
    """Accuracy of the submission against a file of true labels (checked by labels_file)."""
    with open(path, newline="") as file:
        truth = {row[options.id_column]: row[options.label_column] for row in csv.DictReader(file)}
    scored = [(label, truth[ident]) for ident, label in rows if ident in truth]
    correct = sum(predicted == true for predicted, true in scored)
    return {"scored_images": len(scored), "acc": round(correct / len(scored), 6) if scored else 0.0}
