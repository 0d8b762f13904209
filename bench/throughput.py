"""Training throughput against its bound: each model's real training steps (cache, loader,
augmentation, the step) in images per second, and the same steps fed a synthetic batch
already on the device, the most the input path could reach. On CUDA: bf16 autocast and
channels-last, as in training; --compile adds torch.compile.

    python bench/throughput.py --data ../shared/datasets/intel-scenes --profile gpu [--compile]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/throughput.py`

import torch

from bench.machine import describe, images_per_second, run_measured
from bench.workspace import copy_project, load_profile
from imgclf import paths
from imgclf.config import load_params
from imgclf.predict import to_model_input
from imgclf.runtime import configure, pick_device
from imgclf.samples import load_split_data
from imgclf.train import prepare_run, train_step, training_input, wrap

Batch = tuple[torch.Tensor, torch.Tensor]


def measure(name: str, steps: int) -> tuple[float, float]:
    params = load_params()
    device = pick_device(params.train.device)
    configure(params.train, device)
    run = prepare_run(name, params, load_split_data(paths.MANIFEST, paths.SPLIT), device)
    net = wrap(run.model, params, device)
    net.train()
    rng = torch.Generator().manual_seed(0)

    def real(batch: Batch) -> None:
        inputs = training_input(batch[0], device, params.augment, rng)
        train_step(run, net, inputs, batch[1].to(device, non_blocking=True))

    images, targets = next(iter(run.train_loader))
    synthetic = (
        to_model_input(images, device).contiguous(memory_format=torch.channels_last),
        targets.to(device),
    )
    real_rate = images_per_second(real, islice(run.train_loader, steps))
    bound = images_per_second(lambda batch: train_step(run, net, *batch), [synthetic] * steps)
    return real_rate, bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--profile", default="gpu")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    profile = load_profile(args.profile)
    with tempfile.TemporaryDirectory() as folder:
        project = copy_project(
            Path(folder) / "project",
            {
                **profile,
                "data.root": str(args.data.resolve()),
                "train.compile": args.compile,
                # the speed is the same; a one-cycle schedule would end before `--steps` do
                "train.schedule": "constant",
            },
        )
        run_measured(["dvc", "repro", "split"], project)
        os.chdir(project)
        rows = {name: measure(name, args.steps) for name in paths.MODEL_NAMES}
    print(
        f"Training images/s, profile {args.profile}, torch.compile"
        f" {'on' if args.compile else 'off'} ({describe()}):\n\n"
        "| model | real input path | synthetic batch on the device | ratio |\n|---|---|---|---|"
    )
    for name, (real_rate, bound) in rows.items():
        print(f"| {name} | {real_rate:.0f} | {bound:.0f} | {real_rate / bound:.0%} |")


if __name__ == "__main__":
    main()
