"""Find the images in a data folder laid out as train/<class>/*, test/<class>/*, predict/*."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from imgclf.config import DataParams
from imgclf.errors import UserError
from imgclf.images import IMAGE_SUFFIXES
from imgclf.samples import SPLITS
from imgclf.unicode_forms import normal_form
from imgclf.wording import listed

# Windows writes these into folders and hides them, as macOS does its dot files.
WINDOWS_FOLDER_FILES = frozenset({"thumbs.db", "desktop.ini"})


class Labelled(Protocol):
    """A file found (Candidate) or an image kept (Sample): where it came from, its class."""

    source: str
    label: str


@dataclass(frozen=True)
class Candidate:
    path: str  # relative to data.root, with forward slashes
    source: str  # train, val, test or predict
    label: str  # "" for predict


@dataclass
class Scan:
    candidates: list[Candidate] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    hidden: int = 0
    warnings: list[str] = field(default_factory=list)


def source_dirs(data: DataParams) -> dict[str, str]:
    return {
        "train": data.train_dir,
        "val": data.val_dir,
        "test": data.test_dir,
        "predict": data.predict_dir,
    }


def scan(data: DataParams) -> Scan:
    root = Path(data.root)
    if not root.is_dir():
        raise UserError(
            f"data.root: the folder {root} does not exist; point data.root in params.yaml at "
            "a folder holding train/<class>/ images (see README, 'Your own data')"
        )
    result = Scan()
    for source, sub in source_dirs(data).items():
        folder = root / sub
        if not folder.is_dir():
            if source == "train":
                raise UserError(
                    f"data.train_dir: {folder} does not exist; it must hold one folder of "
                    f"images per class ({data.train_dir}/<class>/*.jpg). If its class folders "
                    "were empty, DVC did not keep them: put images in them"
                )
            continue
        if source == "predict":
            _collect(folder, root, source, "", result)
            continue
        for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
            if is_hidden(entry.name):
                result.hidden += 1
            elif entry.is_dir():
                found = _collect(Path(entry.path), root, source, entry.name, result)
                if not found:
                    result.warnings.append(
                        f"{_relative(Path(entry.path), root)}/ holds no images: not a class"
                    )
            else:
                result.rejected.append(
                    (_relative(Path(entry.path), root), "not inside a class folder")
                )
    if not result.candidates:
        extensions = " ".join(sorted(IMAGE_SUFFIXES))
        raise UserError(
            f"no images found under {root}: expected {data.train_dir}/<class>/ folders of "
            f"images ({extensions})"
        )
    return result


def check_trainable(items: Iterable[Labelled], data: DataParams, note: str = "") -> None:
    """Stop unless there are at least two training classes, and no val or test class that
    training lacks, nor one class name written in two Unicode forms; `note` (what was left
    out, and where it is listed) ends each message."""
    items = list(items)
    refuse_names_written_two_ways(items, data)
    train = Path(data.root) / data.train_dir
    train_classes = {item.label for item in items if item.source == "train"}
    suffix = f" ({note})" if note else ""
    if not train_classes:
        raise UserError(f"no usable training images under {train}{suffix}")
    if len(train_classes) < 2:
        raise UserError(
            f"only one class ({train_classes.pop()!r}) with usable images in {train}: a "
            f"classifier needs at least two class folders with images{suffix}"
        )
    for source in ("val", "test"):
        unknown = {item.label for item in items if item.source == source} - train_classes
        if unknown:
            raise UserError(
                f"{source} classes {sorted(unknown)} have no training images; add them under "
                f"{train} or remove them from {Path(data.root) / source_dirs(data)[source]}"
            )


def refuse_names_written_two_ways(items: list[Labelled], data: DataParams) -> None:
    """macOS writes a name decomposed (NFD: 'e' and a combining accent), most other systems
    composed (NFC: 'é'): the two print alike, but are two folders, and so two classes."""
    spellings: dict[str, dict[tuple[str, str], None]] = {}
    for item in items:
        if item.source in SPLITS:
            named = spellings.setdefault(unicodedata.normalize("NFC", item.label), {})
            named[item.source, item.label] = None
    folders = source_dirs(data)
    twins = [
        " and ".join(f"{folders[source]}/{label} ({normal_form(label)})" for source, label in found)
        for found in spellings.values()
        if len({label for _, label in found}) > 1
    ]
    if twins:
        raise UserError(
            f"class folders whose names differ only in Unicode normalisation (NFC and NFD): "
            f"{listed(twins)}. Rename one so that both are written alike (in one split, merge the "
            f"two), e.g. all to NFC with `convmv -f utf8 -t utf8 --nfc -r --notest {data.root}`"
        )


def _collect(folder: Path, root: Path, source: str, label: str, result: Scan) -> int:
    """Add every image file below `folder` (links followed); return how many were found."""
    found = 0
    for path, kind in files_below(folder):
        if kind == "hidden":
            result.hidden += 1
        elif kind == "image":
            result.candidates.append(Candidate(_relative(path, root), source, label))
            found += 1
        else:
            result.rejected.append((_relative(path, root), "not an image file extension"))
    return found


def files_below(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every file below `folder` in sorted order, links followed (a link back up is not walked
    twice), with its kind: "image" (by its extension), "hidden" (a hidden file or folder,
    which is not entered) or "other"."""
    walked: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        if os.path.realpath(dirpath) in walked:  # a link back up: its files are listed already
            dirnames.clear()
            continue
        walked.add(os.path.realpath(dirpath))
        for name in sorted(name for name in dirnames if name.startswith(".")):
            yield Path(dirpath) / name, "hidden"
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            if is_hidden(name):
                kind = "hidden"
            elif Path(name).suffix.lower() in IMAGE_SUFFIXES:
                kind = "image"
            else:
                kind = "other"
            yield Path(dirpath) / name, kind


def is_hidden(name: str) -> bool:
    """A file the system hides (a dot file, or Windows' thumbnails and folder settings)."""
    return name.startswith(".") or name.lower() in WINDOWS_FOLDER_FILES


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
