"""Input path speed, no model: the pipeline's batches (decoded-image cache, whole-batch
augmentation), streamed from the cache file by loader workers and held in memory, against
torchvision's ImageFolder with PIL transforms doing the same augmentation, at the same batch
size and worker count.

    python bench/loader.py --data ../shared/datasets/intel-scenes --image-size 128
"""

from __future__ import annotations

import sys
import tempfile
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/loader.py`

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from bench.machine import describe, images_per_second
from bench.workspace import ROOT, tool_parser
from imgclf.cache import ImageCache
from imgclf.config import Params, read_yaml
from imgclf.loader import CachedImages, make_batches
from imgclf.prepare import Outputs, prepare
from imgclf.samples import read_manifest
from imgclf.train import training_input

WARMUP = 2  # batches before the clock starts: worker start-up is not the input path


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="the data set: train/<class>/*"
    )
    parser.add_argument(
        "--image-size", type=int, default=128, help="image side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="images per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="loader worker processes of the streamed paths (default: %(default)s)",
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=40,
        help=f"timed batches, after {WARMUP} of warm-up (default: %(default)s)",
    )
    args = parser.parse_args()
    tree = read_yaml(ROOT / "params.yaml")
    tree["data"] |= {"root": str(args.data), "image_size": args.image_size}
    params = Params.model_validate(tree)
    augment = params.augment

    with tempfile.TemporaryDirectory() as folder:
        names = ("images.npy", "thumbnails.npy", "m.csv", "rejected.csv")
        outputs = Outputs(*(Path(folder) / name for name in names))
        prepare(params.data, params.prepare, outputs)  # once, as the prepare stage does
        train = [s for s in read_manifest(outputs.manifest) if s.source == "train"]
        dataset = CachedImages(
            ImageCache(outputs.cache), [s.index for s in train], [0] * len(train)
        )
        rng = torch.Generator().manual_seed(0)

        def augment_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            return training_input(batch[0], augment, rng, args.image_size)

        ours = {}
        for in_memory in (False, True):
            batches = make_batches(
                dataset,
                args.batch_size,
                shuffle=True,
                seed=0,
                device=torch.device("cpu"),
                on_device=in_memory,
                num_workers=0 if in_memory else args.workers,
            )
            steps = islice(batches.epoch(1), WARMUP + args.batches)
            ours[in_memory] = images_per_second(augment_batch, steps, WARMUP)

    pil = transforms.Compose(
        [
            transforms.Resize((args.image_size, args.image_size)),
            transforms.RandomAffine(
                degrees=augment.rotation,
                translate=(augment.width_shift, augment.height_shift),
                scale=(1 - augment.zoom, 1 + augment.zoom),
                shear=augment.shear,
                interpolation=transforms.InterpolationMode.BILINEAR,
            ),
            transforms.RandomHorizontalFlip(),
            transforms.PILToTensor(),
        ]
    )
    folder = datasets.ImageFolder(str(args.data / params.data.train_dir), transform=pil)
    baseline_loader = DataLoader(
        folder, batch_size=args.batch_size, shuffle=True, num_workers=args.workers
    )
    baseline = images_per_second(
        lambda batch: batch[0].float(), islice(baseline_loader, WARMUP + args.batches), WARMUP
    )

    print(
        f"Input path, {args.image_size} px, batch {args.batch_size}, {args.workers} workers,"
        f" {args.batches} batches after {WARMUP} of warm-up ({describe()}):\n\n"
        "| input path | images/s | against torchvision |\n|---|---|---|\n"
        f"| torchvision ImageFolder + PIL RandomAffine/flip | {baseline:.0f} | 1.0x |\n"
        f"| decoded-image cache, streamed, + whole-batch affine | {ours[False]:.0f} "
        f"| {ours[False] / baseline:.1f}x |\n"
        f"| decoded-image cache, held in memory, + whole-batch affine | {ours[True]:.0f} "
        f"| {ours[True] / baseline:.1f}x |"
    )


if __name__ == "__main__":
    main()
