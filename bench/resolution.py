"""Each trained model evaluated at other input sizes than it trained at, and the mean of its
probabilities over those sizes: does testing at a higher resolution than training (the
"FixRes" effect of networks trained on random resized crops) or averaging several sizes, a
test-time augmentation, help?

    python bench/resolution.py --project WORK/project \\
        --sizes transfer=128,150,168,192,224 scratch=80,96,112,128

WORK is a `bench/run.py --work WORK` folder (or any project whose models are trained). Each
model reads the cached test and validation images resized to each size (as it resizes them
to its own input size in evaluate), with evaluate.tta_flip as the project sets it. Rows:
each size alone (the one the model trained at marked), then the mean of the probabilities
of all the sizes given. A model built for one input size (a vision transformer's position
embeddings) fails at any other.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/resolution.py`

import torch

from bench.ensemble import accuracy, mean_probability
from bench.workspace import add_project_argument, check_project, tool_parser
from imgclf import paths
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import load_trained, split_logits
from imgclf.samples import load_split_data

SPLITS = ("val", "test")


@exit_on_user_error
def main() -> None:
    parser = tool_parser(__doc__)
    add_project_argument(parser)
    parser.add_argument(
        "--sizes",
        nargs="+",
        required=True,
        metavar="MODEL=SIZE,SIZE",
        type=model_sizes,
        help="a trained model and the input sizes (pixels) to evaluate it at",
    )
    args = parser.parse_args()
    check_project(args.project)
    os.chdir(args.project)
    params = load_params().evaluate
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    targets = {split: torch.as_tensor(data.targets(split)) for split in SPLITS}
    print("| model | input size | val acc | test acc |\n|---|---|---|---|")
    for name, sizes in args.sizes:
        trained = load_trained(paths.checkpoint(name))
        trained_size = trained.model.input_size
        logits: dict[int, dict[str, torch.Tensor]] = {}
        for size in sizes:
            trained.model.input_size = size
            logits[size] = {
                split: split_logits(trained, split, data, cache, params) for split in SPLITS
            }
            label = f"{size} (trained)" if size == trained_size else str(size)
            print(row(name, label, logits[size], targets))
        mean = {
            split: mean_probability({str(size): each[split] for size, each in logits.items()})
            for split in SPLITS
        }
        print(row(name, "mean of " + ", ".join(map(str, sizes)), mean, targets))


def model_sizes(text: str) -> tuple[str, list[int]]:
    """`transfer=128,150` as ("transfer", [128, 150])."""
    name, _, sizes = text.partition("=")
    if name not in paths.MODEL_NAMES or not sizes:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give MODEL=SIZE,SIZE with MODEL one of {', '.join(paths.MODEL_NAMES)}"
        )
    try:
        return name, [int(size) for size in sizes.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes are whole pixels, e.g. 96,112") from None


def row(
    name: str, label: str, logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> str:
    val, test = (accuracy(logits[split], targets[split]) for split in SPLITS)
    return f"| {name} | {label} | {val:.2%} | {test:.2%} |"


if __name__ == "__main__":
    main()
