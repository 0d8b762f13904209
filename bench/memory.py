"""Memory at scale: prepare and one training epoch on generated folders of growing size;
the peak resident memory of each stage (all its processes) should not grow with the count.

    python bench/memory.py --images 5000 50000
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/memory.py`

import numpy as np
from PIL import Image

from bench.machine import describe, run_measured
from bench.workspace import copy_project, tool_parser

STAGES = ("prepare", "split", "check", "train_scratch")
CLASSES = 10


def generate(folder: Path, count: int, size: int = 24) -> None:
    """`count` small PNGs in train/<class>/: a coloured square of the class's hue on noise."""
    rng = np.random.default_rng(0)
    for i in range(count):
        label = i % CLASSES
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        corner = rng.integers(0, size // 2, 2)
        pixels[corner[0] : corner[0] + size // 2, corner[1] : corner[1] + size // 2] = np.array(
            [25 * label, 255 - 25 * label, 128], dtype=np.uint8
        )
        target = folder / "train" / str(label)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target / f"{i:06d}.png")


def measure(count: int, work: Path) -> dict[str, tuple[float, float]]:
    data = work / f"data-{count}"
    generate(data, count)
    project = copy_project(
        work / f"project-{count}",
        {
            "data.root": str(data),
            "data.image_size": 32,
            "train.epochs": 1,
            "train.batch_size": 256,
            "scratch.width": 8,
            "submission.labels_file": None,
        },
    )
    return {
        stage: run_measured([sys.executable, "-m", f"stages.{stage}"], project) for stage in STAGES
    }


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "--images",
        type=int,
        nargs="+",
        default=[5000, 50000],
        metavar="N",
        help="the generated folders' image counts, one run each (default: %(default)s)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {count: measure(count, Path(folder)) for count in args.images}
    header = " | ".join(f"{count:,} images: peak MiB (min)" for count in args.images)
    lines = [f"| stage | {header} |", "|---" * (len(args.images) + 1) + "|"]
    for stage in STAGES:
        cells = [
            f"{results[c][stage][1]:.0f} ({results[c][stage][0] / 60:.1f})" for c in args.images
        ]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    print(f"32 px images, one training epoch ({describe()}):\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
