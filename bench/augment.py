"""Host work of each augmentation policy per batch: the time to augment one batch of small
images (where the pixels cost next to nothing, so what is left is the work a GPU would wait
for) and the number of tensor operations dispatched for it.

    python bench/augment.py [--batch 128] [--size 16] [--batches 50] [--device cuda]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/augment.py`

import torch
from torch.profiler import ProfilerActivity, profile

from bench.machine import describe, images_per_second
from bench.workspace import ROOT, tool_parser
from imgclf.config import load_params
from imgclf.train import training_input

POLICIES = ("keras", "trivialaugment")
CALLS = 20  # calls whose tensor operations are counted


def operations(augment: Callable[[tuple], None], batch: tuple, calls: int = CALLS) -> float:
    """Tensor operations (aten::*) dispatched per call of `augment`, the mean of `calls` calls
    (TrivialAugment draws another operation for each batch)."""
    with profile(activities=[ProfilerActivity.CPU]) as run:
        for _ in range(calls):
            augment(batch)
    events = run.key_averages()
    return sum(event.count for event in events if event.key.startswith("aten::")) / calls


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "--batch", type=int, default=128, help="images per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--size", type=int, default=16, help="image side, in and out (default: %(default)s)"
    )
    parser.add_argument(
        "--batches", type=int, default=50, help="timed batches, after 3 (default: %(default)s)"
    )
    parser.add_argument(
        "--device", default="cpu", help="where the batches are augmented (default: %(default)s)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch, args.size, args.size, 3)  # as the cache holds them
    images = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    batches = [(images,)] * (3 + args.batches)
    print(
        f"Augmentation of {args.batch} images of {args.size} px per batch on {device}, "
        f"{args.batches} batches after 3 ({describe()}):\n\n"
        f"| policy | ms per batch | tensor operations per batch (mean of {CALLS}) |\n|---|---|---|"
    )
    for policy in POLICIES:
        milliseconds, dispatched = host_work(policy, batches, args.size)
        print(f"| {policy} | {milliseconds:.1f} | {dispatched:.0f} |")


def host_work(policy: str, batches: list[tuple], size: int) -> tuple[float, float]:
    """Milliseconds per batch (after 3) and tensor operations per batch of `policy`, with the
    other augment settings of params.yaml."""
    params = load_params(ROOT / "params.yaml").augment.model_copy(update={"policy": policy})
    generator = torch.Generator(batches[0][0].device).manual_seed(0)

    def augment(batch: tuple) -> None:
        training_input(batch[0], params, generator, size)

    rate = images_per_second(augment, batches, warmup=3)
    return 1000 * len(batches[0][0]) / rate, operations(augment, batches[0])


if __name__ == "__main__":
    main()
