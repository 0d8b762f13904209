"""prepare: decode every image once into the cache, list what was kept and what was rejected."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.atomic import atomic_path, write_csv
from imgclf.cache import CacheWriter
from imgclf.config import DataParams, PrepareParams
from imgclf.images import (
    ANALYSIS_SIZE,
    THUMBNAIL,
    UnusableImage,
    almost_black_warning,
    decode_image,
    fingerprint,
    is_almost_black,
)
from imgclf.layout import Candidate, check_trainable, scan, source_dirs
from imgclf.progress import progress_bar
from imgclf.samples import Sample, write_manifest

CHUNK = 512  # files decoded per round: bounds the decoded images waiting to be written


@dataclass(frozen=True)
class Outputs:
    cache: Path
    thumbnails: Path  # grey thumbnails at a fixed size, for check's near duplicates
    manifest: Path
    rejected: Path


@dataclass(frozen=True)
class Decoded:
    candidate: Candidate
    sha256: str
    image: np.ndarray | None  # None when rejected
    thumbnail: np.ndarray | None
    dhash: int
    size: tuple[int, int]
    reason: str
    almost_black: bool = False


def prepare(data: DataParams, options: PrepareParams, outputs: Outputs) -> dict:
    """Scan data.root, decode and resize each image into the cache, and fingerprint it for
    near duplicates at a fixed size; return counts for metrics."""
    found = scan(data)
    for warning in found.warnings:
        print(f"warning: {warning}")
    samples: list[Sample] = []
    rejected = list(found.rejected)
    almost_black: list[str] = []
    root = Path(data.root)
    tasks = ((root, c, data.image_size, options.max_image_pixels) for c in found.candidates)
    workers = min(os.cpu_count() or 1, 8)
    with (
        # Renamed into place after both caches, and written before them: a manifest that fails
        # to write leaves the old caches, which the old manifest lists.
        atomic_path(outputs.manifest) as manifest,
        CacheWriter(outputs.cache, (data.image_size, data.image_size, 3)) as cache,
        CacheWriter(outputs.thumbnails, (THUMBNAIL, THUMBNAIL)) as thumbnails,
    ):
        with (
            ProcessPoolExecutor(workers) as pool,
            progress_bar(total=len(found.candidates), desc="prepare", unit="img") as progress,
        ):
            for chunk in iter(lambda: list(itertools.islice(tasks, CHUNK)), []):
                for item in pool.map(_load, chunk, chunksize=16):
                    progress.update()
                    if item.image is None:
                        rejected.append((item.candidate.path, item.reason))
                        continue
                    if item.almost_black:
                        almost_black.append(item.candidate.path)
                    thumbnails.append(item.thumbnail)
                    samples.append(
                        Sample(
                            index=cache.append(item.image),
                            path=item.candidate.path,
                            source=item.candidate.source,
                            label=item.candidate.label,
                            width=item.size[0],
                            height=item.size[1],
                            sha256=item.sha256,
                            dhash=f"{item.dhash:016x}",
                        )
                    )
        # The report is written even when the data turns out unusable below: it says why.
        write_csv(outputs.rejected, ["path", "reason"], sorted(rejected))
        for folder in _classes_without_images(found.candidates, samples, data):
            print(f"warning: {folder}/ has no usable image (every file rejected): not a class")
        if almost_black:
            print(f"warning: {almost_black_warning(almost_black)}")
        report = f"files rejected: {len(rejected)}, reasons in {outputs.rejected}"
        check_trainable(samples, data, report)  # inside the block: a failure keeps the old cache
        write_manifest(manifest, samples)
    print(f"prepare: {len(samples)} images kept; {report}")
    per_source = Counter(sample.source for sample in samples)
    return {
        "images": len(samples),
        "rejected": len(rejected),
        "hidden_skipped": found.hidden,
        "almost_black": len(almost_black),
        "classes": len({s.label for s in samples if s.source == "train"}),
        **{f"{source}_images": count for source, count in sorted(per_source.items())},
    }


def _load(task: tuple[Path, Candidate, int, int]) -> Decoded:
    root, candidate, size, max_pixels = task
    try:
        data = (root / candidate.path).read_bytes()
    except OSError as error:
        return Decoded(
            candidate, "", None, None, 0, (0, 0), f"unreadable: {error.strerror or error}"
        )
    digest = hashlib.sha256(data).hexdigest()
    try:
        (image, analysis), original_size = decode_image(
            data, (size, ANALYSIS_SIZE), max_pixels, name=str(candidate.path)
        )
    except UnusableImage as reason:
        return Decoded(candidate, digest, None, None, 0, (0, 0), str(reason))
    dhash, thumbnail = fingerprint(analysis)
    return Decoded(
        candidate, digest, image, thumbnail, dhash, original_size, "", is_almost_black(image)
    )


def _classes_without_images(
    candidates: list[Candidate], samples: list[Sample], data: DataParams
) -> list[str]:
    """The class folders (relative to data.root) that held image files but kept none."""
    kept = {(s.source, s.label) for s in samples}
    folders = source_dirs(data)
    return [
        f"{folders[source]}/{label}"
        for source, label in sorted({(c.source, c.label) for c in candidates if c.label} - kept)
    ]
