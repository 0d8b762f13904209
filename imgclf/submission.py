"""make_submission: one CSV row per unlabelled image, with the chosen model's label."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from imgclf.config import SubmissionParams
from imgclf.errors import UserError
from imgclf.paths import MODEL_NAMES, ModelName
from imgclf.samples import Sample


def choose_model(choice: str, val_acc: dict[ModelName, float]) -> ModelName:
    """`auto` takes the model with the better validation accuracy (transfer on a tie)."""
    if choice != "auto":
        return choice  # type: ignore[return-value]
    return max(reversed(MODEL_NAMES), key=lambda name: val_acc[name])


def submission_id(sample: Sample, id_from: str) -> str:
    path = PurePosixPath(sample.path)
    return {"stem": path.stem, "name": path.name}.get(id_from, sample.path)


def score_against(
    rows: list[tuple[str, str]], path: Path, options: SubmissionParams
) -> dict[str, float | int | None]:
    """Accuracy of the submission against a file of true labels (same column names)."""
    if not path.exists():
        raise UserError(
            f"submission.labels_file: {path} does not exist; set it to null to skip scoring"
        )
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = {options.id_column, options.label_column} - set(reader.fieldnames or ())
        if missing:
            raise UserError(
                f"submission.labels_file: {path} has no column {sorted(missing)[0]!r}; its columns "
                f"must match submission.id_column and submission.label_column"
            )
        truth = {row[options.id_column]: row[options.label_column] for row in reader}
    scored = [(label, truth[ident]) for ident, label in rows if ident in truth]
    correct = sum(predicted == true for predicted, true in scored)
    return {"scored": len(scored), "acc": round(correct / len(scored), 6) if scored else None}
