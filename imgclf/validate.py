"""validate: all that the parameters and the file tree alone can tell, before any other stage.

DVC deletes a stage's outputs before it runs the stage, and hashes the data folder before
`prepare` runs: a bad parameter or a broken data folder found inside a later stage would cost
the outputs of every stage up to it. This stage runs first, at every `dvc repro` (it is
cheap), and stops with one line naming the key or the file.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from imgclf.config import Params, TransferParams
from imgclf.errors import UserError
from imgclf.layout import check_trainable, scan
from imgclf.samples import Sample
from imgclf.split import assign_splits
from imgclf.submission import (
    check_ids_labelled,
    check_labels_are_classes,
    check_unique_ids,
    labels_file,
)
from imgclf.timm_names import check_timm_backbone
from imgclf.wording import listed


def validate(params: Params) -> dict[str, Any]:
    """Check the data folder against the parameters; return what was found there."""
    check_timm_backbone(params.transfer)
    if warning := frozen_random_weights(params.transfer):
        print(f"warning: {warning}")
    root = Path(params.data.root)
    if root.is_dir():
        check_tree(root)
    found = scan(params.data)  # a missing folder, or no images at all, stops here
    # The scan follows links to folders, where check_tree (as DVC) does not look.
    scanned = [c.path for c in found.candidates] + [path for path, _ in found.rejected]
    refuse_undecodable_names([root / path for path in scanned], root)
    for warning in found.warnings:
        print(f"warning: {warning}")
    check_trainable(found.candidates, params.data)
    # The split on the files found: a class too small to split stops here, not after prepare.
    planned = [
        Sample(i, c.path, c.source, c.label, 0, 0, "", "") for i, c in enumerate(found.candidates)
    ]
    assign_splits(planned, params.split, params.seed)
    truth = labels_file(params.data, params.submission)
    classes = sorted({c.label for c in found.candidates if c.source == "train"})
    predict = [c.path for c in found.candidates if c.source == "predict"]
    check_submission(predict, truth, classes, params)
    per_source = Counter(candidate.source for candidate in found.candidates)
    return {
        "data_root": params.data.root,
        "image_files": dict(sorted(per_source.items())),
        "classes": classes,
        "labels_file": str(truth) if truth else None,
    }


def frozen_random_weights(transfer: TransferParams) -> str | None:
    """Freezing keeps a backbone's ImageNet weights; with transfer.pretrained false it keeps
    random ones, which learn nothing. Said, not refused: a test of the freezing may want it."""
    frozen = [
        key
        for key, on in (
            ("freeze_backbone", transfer.freeze_backbone),
            ("frozen_epochs", transfer.frozen_epochs > 0),
            ("frozen_share", transfer.frozen_share > 0),
        )
        if on
    ]
    if transfer.pretrained or not frozen:
        return None
    keys = " and ".join(f"transfer.{key}" for key in frozen)
    return (
        f"the backbone is frozen ({keys}) with random weights (transfer.pretrained is "
        "false): set transfer.pretrained to true, or leave the backbone unfrozen"
    )


def check_submission(
    predict: list[str], truth: Path | None, classes: list[str], params: Params
) -> None:
    """Stop when two predict files get one id, when the labels file holds none of their ids,
    or none of its labels is a class; warn when only some are."""
    check_unique_ids(predict, params.submission.id_from)
    if truth and predict:
        for warning in (
            check_ids_labelled(predict, truth, params.submission),
            check_labels_are_classes(truth, classes, params.submission),
        ):
            if warning:
                print(f"warning: {warning}")


def check_tree(root: Path) -> None:
    """What DVC and prepare make of the files and folders below data.root, links not followed
    (as DVC hashes it)."""
    below = [
        Path(folder) / name
        for folder, dirnames, filenames in os.walk(root)
        for name in sorted(dirnames + filenames)
    ]
    refuse_undecodable_names(below, root)
    refuse_broken_links(below)
    if warning := linked_folders(below, root):
        print(f"warning: {warning}")


def refuse_undecodable_names(paths: list[Path], root: Path) -> None:
    """prepare lists the files in UTF-8, which cannot hold a name that is not UTF-8: Linux
    keeps a name's bytes as they came, e.g. cp1252 from a zip made on Windows. Each is named
    once, up to its first name that is not UTF-8: a folder, not each file in it."""
    undecodable = dict.fromkeys(
        os.fsencode(part).decode("utf-8", "backslashreplace")
        for path in paths
        if (part := undecodable_part(path.relative_to(root)))
    )
    if undecodable:
        raise UserError(
            f"data.root: names that are not UTF-8, which prepare cannot list: "
            f"{listed(list(undecodable))}. Rename them to UTF-8, e.g. those from a zip made on "
            f"Windows with `convmv -f cp1252 -t utf8 -r --notest {root}`"
        )


def undecodable_part(path: Path) -> Path | None:
    """`path` up to its first name that is not UTF-8; None if all are."""
    for end, name in enumerate(path.parts, 1):
        if not is_utf8(name):
            return Path(*path.parts[:end])
    return None


def is_utf8(name: str) -> bool:
    """Python keeps the bytes of a file name that are not UTF-8 as surrogates, which UTF-8
    cannot encode."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def refuse_broken_links(paths: list[Path]) -> None:
    """DVC cannot hash a folder that holds a broken symbolic link, and stops with a bare
    'No such file or directory'; say which links, and what to do."""
    broken = [
        f"{path} -> {os.readlink(path)}"
        for path in paths
        if path.is_symlink() and not path.exists()
    ]
    if broken:
        raise UserError(
            f"data.root: broken symbolic links, which DVC cannot hash: {listed(broken)}. "
            "Remove them or restore what they point to"
        )


def linked_folders(paths: list[Path], root: Path) -> str | None:
    """DVC follows a link to a file but not one to a folder: it hashes the link, not what is
    inside, so a change in there does not rerun prepare. Said, not refused: a view of folders
    linked together (bench/run.py's) is a fair way to try a data set."""
    linked = [
        f"{path.relative_to(root)} -> {os.readlink(path)}"
        for path in paths
        if path.is_symlink() and path.is_dir()
    ]
    if not linked:
        return None
    return (
        f"data.root: folders linked in, which DVC does not look inside: {listed(linked)}. A "
        "change inside them does not rerun prepare: run `dvc repro --force prepare` after one, "
        "or copy them in instead (cp -rL)"
    )
