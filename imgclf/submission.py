"""make_submission: one CSV row per unlabelled image, with the chosen model's label.

The checks of the ids (one per file, and found in the labels file) run in validate too, so a
clash or a mismatch stops the run before any training.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import get_args

from imgclf.config import DataParams, SubmissionParams
from imgclf.errors import UserError
from imgclf.paths import MODEL_NAMES, ModelName
from imgclf.unicode_forms import written_otherwise
from imgclf.wording import counted, listed

DEFAULT_LABELS_FILE = "predict_labels.csv"  # what submission.labels_file: auto looks for
UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
ID_FROM = get_args(SubmissionParams.model_fields["id_from"].annotation)  # stem, name, path


def choose_model(choice: str, val_acc: dict[ModelName, float]) -> str:
    """`auto` takes the model with the better validation accuracy (transfer on a tie);
    `ensemble` both, their probabilities averaged (weighted by evaluate.ensemble_weights)."""
    if choice != "auto":
        return choice
    return max(reversed(MODEL_NAMES), key=lambda name: val_acc[name])


def submission_id(path: str, id_from: str) -> str:
    """The id of the predict file at `path` (relative to data.root): its stem, name or path."""
    posix = PurePosixPath(path)
    return {"stem": posix.stem, "name": posix.name}.get(id_from, path)


def files_by_id(paths: Iterable[str], id_from: str) -> dict[str, list[str]]:
    """The predict files that get each id."""
    files: defaultdict[str, list[str]] = defaultdict(list)
    for path in paths:
        files[submission_id(path, id_from)].append(path)
    return dict(files)


def check_unique_ids(paths: list[str], id_from: str) -> None:
    """Stop when two predict files get one id: the submission would hold it twice, and a
    scorer would count it twice."""
    clashes = {
        ident: files for ident, files in files_by_id(paths, id_from).items() if len(files) > 1
    }
    if not clashes:
        return
    named = listed(
        [f"{' and '.join(files)} share the id {ident!r}" for ident, files in clashes.items()]
    )
    unique = unique_id_options(paths)
    raise UserError(
        f"submission.id_from: {id_from} gives predict files the same id: {named}. Set "
        f"submission.id_from: {' or '.join(unique)} to give each file its own id, or rename "
        "the files"
    )


def unique_id_options(paths: list[str]) -> list[str]:
    """The values of submission.id_from that give each file its own id (path always does)."""
    return [
        option
        for option in ID_FROM
        if all(len(files) == 1 for files in files_by_id(paths, option).values())
    ]


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
    header = next(csv.reader(labels_text(path)), [])
    missing = sorted({options.id_column, options.label_column} - set(header))
    if missing:
        raise UserError(
            f"submission.labels_file: {path} has no column {missing[0]!r} (its columns: "
            f"{', '.join(header) or 'none'}); they must match submission.id_column and "
            "submission.label_column"
        )
    return path


def labels_text(path: Path) -> io.StringIO:
    """The text of a labels file, which must be UTF-8 (with or without Excel's byte order mark,
    which utf-8-sig leaves out of the header)."""
    encoded = path.read_bytes()
    try:
        return io.StringIO(encoded.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as error:
        utf16 = " (it is UTF-16: Excel's 'Unicode Text')" if encoded[:2] in UTF16_MARKS else ""
        line = encoded[: error.start].count(b"\n") + 1
        raise UserError(
            f"submission.labels_file: {path} is not UTF-8 text{utf16}: line {line} has the "
            f"byte {encoded[error.start]:#x}. Save it as 'CSV UTF-8' (Excel: File > Save As), "
            "or with an editor's UTF-8 encoding"
        ) from None


def read_labels(path: Path, options: SubmissionParams) -> dict[str, str]:
    """The true label of each id in a labels file (checked by labels_file)."""
    rows = csv.DictReader(labels_text(path))
    return {row[options.id_column]: row[options.label_column] for row in rows}


def check_ids_labelled(paths: list[str], truth: Path, options: SubmissionParams) -> str | None:
    """Stop when no predict file's id is in the labels file, which would score no image;
    return a warning when only some are (the score covers those), None when all are."""
    labelled = read_labels(truth, options)
    ids = [submission_id(path, options.id_from) for path in paths]
    unlabelled = [ident for ident in ids if ident not in labelled]
    if not unlabelled:
        return None
    other_form = written_otherwise(unlabelled, labelled, "id", "the file names", str(truth))
    if len(unlabelled) < len(ids):
        return (
            f"predict files with no label in {truth}: {len(unlabelled)} of {len(ids)} (e.g. "
            f"{unlabelled[0]!r}); the submission is scored on the other "
            f"{len(ids) - len(unlabelled)}{other_form}"
        )
    theirs = f"its ids look like {next(iter(labelled))!r}" if labelled else "it has no rows"
    raise UserError(
        f"submission.labels_file: no predict file's id is in {truth}: submission.id_from: "
        f"{options.id_from} gives ids like {ids[0]!r}, {theirs}. "
        + matching_id_from(paths, labelled, options)
        + other_form
    )


def check_labels_are_classes(
    truth: Path, classes: list[str], options: SubmissionParams
) -> str | None:
    """Stop when no label in the labels file is a class name, which would score every image
    wrong; return a warning when some are not (or are empty), None when all are."""
    labels = list(read_labels(truth, options).values())
    unknown = [label for label in labels if label and label not in classes]
    empty = labels.count("")
    if not unknown and not empty:
        return None
    examples = ", ".join(repr(label) for label in sorted(set(unknown))[:2])
    names = listed([repr(name) for name in classes])
    other_form = written_otherwise(
        unknown, classes, "label", str(truth), "the class folders' names"
    )
    if len(unknown) + empty == len(labels):
        theirs = f"its labels look like {examples}" if unknown else "its labels are empty"
        raise UserError(
            f"submission.labels_file: no label in {truth} is a class name ({theirs}; the "
            f"classes: {names}), so every image would be scored wrong. Make its column "
            f"{options.label_column!r} hold the names of the class folders, spelled as they "
            f"are{other_form}"
        )
    problems = []
    if unknown:
        problems.append(
            f"{counted(len(unknown), 'row')} with a label that is no class (e.g. {examples})"
        )
    if empty:
        problems.append(f"{counted(empty, 'row')} with an empty label")
    return (
        f"labels in {truth}: {' and '.join(problems)}, of {len(labels)} (the classes: {names}); "
        f"a prediction for those images is never right{other_form}"
    )


def matching_id_from(paths: list[str], labelled: dict[str, str], options: SubmissionParams) -> str:
    """What to do when submission.id_from gives ids the labels file lacks: the option whose
    ids are there, or else what each option makes of the first file."""
    for option in unique_id_options(paths):
        matched = sum(submission_id(path, option) in labelled for path in paths)
        if matched:
            return f"Set submission.id_from: {option} (then {matched} of {len(paths)} match)"
    examples = ", ".join(f"{option}: {submission_id(paths[0], option)!r}" for option in ID_FROM)
    return (
        f"Make its column {options.id_column!r} hold the predict files' ids as "
        f"submission.id_from makes them ({examples})"
    )


def score_against(
    rows: list[tuple[str, str]], truth: Path, options: SubmissionParams
) -> dict[str, float | int] | None:
    """Accuracy of the submission's rows that have a true label (in a file checked by
    labels_file); None when none has one: an accuracy over no image is no measurement."""
    labelled = read_labels(truth, options)
    scored = [(label, labelled[ident]) for ident, label in rows if ident in labelled]
    if not scored:
        return None
    correct = sum(predicted == true for predicted, true in scored)
    return {"scored_images": len(scored), "acc": round(correct / len(scored), 6)}


def rejected_predict_files(rejected: Path, predict_dir: str) -> list[tuple[str, str]]:
    """The files under predict_dir that prepare rejected (from its list of rejected files),
    with the reason: they have no row in the submission."""
    if not rejected.is_file():
        return []
    folder = PurePosixPath(predict_dir)
    with open(rejected, newline="") as file:
        return [
            (row["path"], row["reason"])
            for row in csv.DictReader(file)
            if PurePosixPath(row["path"]).is_relative_to(folder)
        ]
