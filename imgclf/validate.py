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
from imgclf.submission import check_ids_labelled, check_unique_ids, labels_file
from imgclf.timm_names import check_timm_backbone
from imgclf.wording import listed


def validate(params: Params) -> dict[str, Any]:
    """Check the data folder against the parameters; return what was found there."""
    check_timm_backbone(params.transfer)
    if warning := frozen_random_weights(params.transfer):
        print(f"warning: {warning}")
    root = Path(params.data.root)
    if root.is_dir():
        refuse_broken_links(root)
    found = scan(params.data)  # a missing folder, or no images at all, stops here
    check_trainable(found.candidates, params.data)
    # The split on the files found: a class too small to split stops here, not after prepare.
    planned = [
        Sample(i, c.path, c.source, c.label, 0, 0, "", "") for i, c in enumerate(found.candidates)
    ]
    assign_splits(planned, params.split, params.seed)
    truth = labels_file(params.data, params.submission)
    check_submission_ids([c.path for c in found.candidates if c.source == "predict"], truth, params)
    per_source = Counter(candidate.source for candidate in found.candidates)
    return {
        "data_root": params.data.root,
        "image_files": dict(sorted(per_source.items())),
        "classes": sorted({c.label for c in found.candidates if c.source == "train"}),
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


def check_submission_ids(predict: list[str], truth: Path | None, params: Params) -> None:
    """Stop when two predict files get one id, or when the labels file holds none of their
    ids; warn when it holds only some."""
    check_unique_ids(predict, params.submission.id_from)
    if truth and predict:
        warning = check_ids_labelled(predict, truth, params.submission)
        if warning:
            print(f"warning: {warning}")


def refuse_broken_links(root: Path) -> None:
    """DVC cannot hash a folder that holds a broken symbolic link, and stops with a bare
    'No such file or directory'; say which links, and what to do."""
    broken = []
    for folder, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(folder) / name
            if path.is_symlink() and not path.exists():
                broken.append(f"{path} -> {os.readlink(path)}")
    if broken:
        raise UserError(
            f"data.root: broken symbolic links, which DVC cannot hash: {listed(broken)}. "
            "Remove them or restore what they point to"
        )
