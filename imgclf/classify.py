"""Label new images with a trained model: `python -m imgclf.classify MODEL PATH... [--out CSV]`.

MODEL is a checkpoint (`models/scratch.pt`) or the exported ONNX file (`models/export/*.onnx`,
its model card beside it). Each PATH is an image file or a folder, searched recursively.
Every image is decoded and resized as `prepare` made the training images, at the size recorded
with the model, and the files go through in batches, so memory does not grow with their
number. The CSV has one row per image: the file, then the top-k classes, most probable first,
each with its probability. A file that cannot be used is listed on stderr with the reason,
and the run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm

from imgclf.atomic import atomic_open
from imgclf.errors import UserError, exit_on_user_error
from imgclf.images import UnusableImage, almost_black_warning, decode_image, is_almost_black
from imgclf.inference import Loaded, load_model, softmax
from imgclf.layout import files_below
from imgclf.progress import progress_bar
from imgclf.termination import exit_on_sigterm
from imgclf.wording import counted

DEFAULT_MAX_PIXELS = 100_000_000  # params.yaml's prepare.max_image_pixels


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m imgclf.classify", description=__doc__)
    parser.add_argument("model", type=Path, help="a .pt checkpoint or an exported .onnx file")
    parser.add_argument("paths", type=Path, nargs="+", help="image files or folders")
    parser.add_argument("--out", type=Path, help="the CSV to write (default: standard output)")
    parser.add_argument("--top-k", type=int, default=3, help="classes per image (default 3)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch")
    parser.add_argument(
        "--threads", type=int, help="CPU threads (default: train.cpu_threads of the model)"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="larger images are refused as decompression bombs",
    )
    args = parser.parse_args(argv)
    for option in ("top_k", "batch_size", "threads", "max_pixels"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1 (got {value})")
    return args


def image_files(paths: Iterable[Path], skipped: list[tuple[Path, str]]) -> list[Path]:
    """The files named, and the image files below the folders named (hidden ones left out),
    each once, as first named; other files below the folders are added to `skipped` with the
    reason."""
    found: list[Path] = []
    seen: set[str] = set()  # absolute names: `photos` and `photos/a.jpg` name a.jpg twice
    for path in paths:
        if path.is_file():
            named = [(path, "image")]
        elif path.is_dir():
            named = list(files_below(path))
        else:
            raise UserError(f"{path}: no such file or folder")
        for file, kind in named:
            name = os.path.abspath(file)
            if kind == "hidden" or name in seen:
                continue
            seen.add(name)
            if kind == "image":
                found.append(file)
            else:
                skip(skipped, file, "not an image file extension")
    return found


def decoded(
    files: list[Path], size: int, max_pixels: int, skipped: list[tuple[Path, str]]
) -> tuple[list[Path], list[np.ndarray]]:
    """The files that decode, and their images (size, size, 3); the others go to `skipped`."""
    kept, images = [], []
    for file in files:
        try:
            (image,), _ = decode_image(
                file.read_bytes(), (size,), max_pixels, "--max-pixels", name=str(file)
            )
        except UnusableImage as reason:
            skip(skipped, file, str(reason))
            continue
        except OSError as error:
            skip(skipped, file, f"unreadable: {error.strerror or error}")
            continue
        kept.append(file)
        images.append(image)
    return kept, images


def classify(
    model: Loaded,
    files: list[Path],
    out: IO[str],
    top_k: int,
    batch_size: int,
    max_pixels: int,
    skipped: list[tuple[Path, str]],
) -> int:
    """Write the CSV of `files` to `out`; return how many images were labelled."""
    top_k = min(top_k, len(model.classes))
    writer = csv.writer(out)
    header = ["file"]
    for rank in range(1, top_k + 1):
        header += [f"class_{rank}", f"prob_{rank}"]
    writer.writerow(header)
    labelled = 0
    almost_black: list[str] = []
    with progress_bar(total=len(files), desc="classify", unit="img", file=sys.stderr) as progress:
        for batch in _batches(files, batch_size):
            kept, images = decoded(batch, model.image_size, max_pixels, skipped)
            almost_black += [
                str(f) for f, i in zip(kept, images, strict=True) if is_almost_black(i)
            ]
            if kept:
                probabilities = softmax(model.scorer.logits(np.stack(images)))
                best = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
                for file, order, row in zip(kept, best, probabilities, strict=True):
                    cells = [(model.classes[i], f"{row[i]:.6f}") for i in order]
                    writer.writerow([file.as_posix(), *itertools.chain(*cells)])
            labelled += len(kept)
            progress.update(len(batch))
    if almost_black:
        print(f"warning: {almost_black_warning(almost_black)}", file=sys.stderr)
    return labelled


def skip(skipped: list[tuple[Path, str]], file: Path, reason: str) -> None:
    """List a file that is not labelled, and say why on stderr (above the progress bar)."""
    skipped.append((file, reason))
    tqdm.write(f"skipped {file}: {reason}", file=sys.stderr)


def _batches(files: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    """The CSV's file, or standard output; a file name that is not valid in the file system's
    encoding (bytes `caf\\xe9.jpg` on Linux) is written as its original bytes."""
    if path is None:
        sys.stdout.reconfigure(errors="surrogateescape")
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader stopped early (`| head`): end quietly, and point stdout at devnull, or
            # Python's own flush at exit would fail again, with a traceback.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        return
    with atomic_open(path, newline="", errors="surrogateescape") as file:
        yield file


@exit_on_user_error
def main() -> None:
    exit_on_sigterm()
    args = parse_args(sys.argv[1:])
    if args.out and args.out.is_dir():
        raise UserError(f"--out {args.out} is a folder: name the CSV file to write")
    model = load_model(args.model, args.threads)  # first: a wrong model path is told at once
    skipped: list[tuple[Path, str]] = []
    files = image_files(args.paths, skipped)
    if not files:
        raise UserError(f"no image files in {', '.join(str(p) for p in args.paths)}")
    with _output(args.out) as out:
        labelled = classify(
            model, files, out, args.top_k, args.batch_size, args.max_pixels, skipped
        )
    where = f" in {args.out}" if args.out else ""
    also = f"; {counted(len(skipped), 'file')} skipped (listed above)" if skipped else ""
    print(f"classify: {counted(labelled, 'image')} labelled{where}{also}", file=sys.stderr)


if __name__ == "__main__":
    main()
