"""The manifest of prepared images and the split that assigns each one to train/val/test."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.atomic import write_csv
from imgclf.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    index: int  # row in the image cache
    path: str  # relative to data.root
    source: str  # the folder it came from: train, val, test or predict
    label: str  # "" when unlabelled
    width: int  # of the original file
    height: int
    sha256: str
    dhash: str  # 16 hex digits


FIELDS = [field.name for field in dataclasses.fields(Sample)]


def write_manifest(path: Path, samples: list[Sample]) -> None:
    write_csv(path, FIELDS, (dataclasses.astuple(sample) for sample in samples))


def read_manifest(path: Path) -> list[Sample]:
    with open(path, newline="") as file:
        return [
            Sample(
                index=int(row["index"]),
                path=row["path"],
                source=row["source"],
                label=row["label"],
                width=int(row["width"]),
                height=int(row["height"]),
                sha256=row["sha256"],
                dhash=row["dhash"],
            )
            for row in csv.DictReader(file)
        ]


def write_split(path: Path, assignment: dict[int, str]) -> None:
    write_csv(path, ["index", "split"], sorted(assignment.items()))


def read_split(path: Path) -> dict[int, str]:
    with open(path, newline="") as file:
        return {int(row["index"]): row["split"] for row in csv.DictReader(file)}


@dataclass(frozen=True)
class SplitData:
    """Prepared samples with their split, and the class names (sorted train labels)."""

    samples: list[Sample]
    split_of: dict[int, str]
    classes: list[str]
    fingerprint: str  # hash of manifest and split: which data a model was trained on

    def subset(self, split: str) -> list[Sample]:
        return [sample for sample in self.samples if self.split_of.get(sample.index) == split]

    def indices(self, split: str) -> np.ndarray:
        return np.array([sample.index for sample in self.subset(split)], dtype=np.int64)

    def targets(self, split: str) -> np.ndarray:
        class_id = {name: i for i, name in enumerate(self.classes)}
        return np.array([class_id[sample.label] for sample in self.subset(split)], dtype=np.int64)


def load_split_data(manifest: Path, split: Path) -> SplitData:
    for path in (manifest, split):
        if not path.exists():
            raise UserError(f"{path} not found: run `dvc repro` to produce it")
    samples = read_manifest(manifest)
    split_of = read_split(split)
    classes = sorted({sample.label for sample in samples if split_of.get(sample.index) == "train"})
    digest = hashlib.sha256(manifest.read_bytes() + split.read_bytes()).hexdigest()
    return SplitData(samples, split_of, classes, digest)
