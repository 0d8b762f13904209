"""Moving averages of the weights compared on one training run: which decay, with or without
timm's warm-up, keeps the epoch that tests best? An average never feeds back into training,
so every average here follows the same weights, step for step: their differences are the
averaging's alone, not a seed's.

    python bench/ema.py --project WORK/project --model transfer \\
        --averages none 0.998:warmup 0.998 0.999 --out OUT.md

WORK is a `bench/run.py --work WORK` folder (prepare and split done). The model trains as its
stage trains it, with the project's params.yaml as it finds it (the report and the start name
any key where that differs from the profile's, WORK/profile-params.yaml: bench/seeds.py leaves
its last seed's), but with these averages in place of
train.ema_decay's: `none` (the weights themselves), `D` (decay D from the first step) and
`D:warmup` (timm's warm-up: the decay grows as 1 - (1 + step)^(-2/3) up to D, as
train.ema_warmup sets it). After each epoch each average is validated as the stage validates
(the stage's train.select picks its epoch) and tested as evaluate tests (evaluate.tta_flip).
The table gives each epoch's validation and test accuracy per average, then the epoch each
average would keep and its test accuracy. Nothing of the project's is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/ema.py`

import torch
from timm.utils import ModelEmaV3
from torch import nn

from bench.run import PROFILE_PARAMS
from bench.throughput import start_as_a_stage
from bench.workspace import add_project_argument, check_split_project, flatten, tool_parser
from imgclf import paths
from imgclf.cache import ImageCache
from imgclf.config import Params, read_yaml
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import Trained, split_logits
from imgclf.predict import loss_and_accuracy
from imgclf.recipe import make_ema
from imgclf.runtime import (
    configure,
    pick_device,
    seed_everything,
)
from imgclf.samples import load_split_data
from imgclf.train import Progress, network_for_epoch, prepare_run, train_one_epoch

RAW = "none"


def average_spec(text: str) -> str:
    """An argparse type: `none`, `D` or `D:warmup` with 0 < D < 1."""
    decay, _, warmup = text.partition(":")
    try:
        valid = text == RAW or (0 < float(decay) < 1 and warmup in ("", "warmup"))
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(f"{text!r}: give none, a decay D or D:warmup (0 < D < 1)")
    return text


class Averages:
    """Several moving averages of one model, updated together: what the training loop
    calls `run.ema`."""

    def __init__(self, model: nn.Module, specs: list[str], params: Params) -> None:
        self.model = model
        self.averages: dict[str, ModelEmaV3] = {}
        for spec in specs:
            if spec != RAW:
                decay, _, warmup = spec.partition(":")
                train = params.train.model_copy(
                    update={"ema_decay": float(decay), "ema_warmup": bool(warmup)}
                )
                # as the stage makes it; never None, as average_spec takes decays above 0 only
                average = make_ema(model, params.model_copy(update={"train": train}))
                self.averages[spec] = cast(ModelEmaV3, average)

    def update(self, model: nn.Module, step: int) -> None:
        for average in self.averages.values():
            average.update(model, step=step)

    def module(self, spec: str) -> nn.Module:
        return self.model if spec == RAW else self.averages[spec].module


def parameters_used(project: Path) -> str:
    """The report's line on the parameters the run trains with: the project's params.yaml, and
    each key where it differs from the profile's that bench/run.py kept beside the project."""
    kept = project.parent / PROFILE_PARAMS
    if not kept.is_file():
        return "Parameters: the project's params.yaml."
    used, profile = (flatten(read_yaml(path)) for path in (project / "params.yaml", kept))
    differ = [key for key in sorted(used | profile) if used.get(key) != profile.get(key)]
    if not differ:
        return f"Parameters: the project's params.yaml, the profile's ({kept.name})."
    changes = ", ".join(f"{key} {used.get(key)} (profile: {profile.get(key)})" for key in differ)
    return f"Parameters: the project's params.yaml, which differs from {kept.name} in {changes}."


@exit_on_user_error
def main() -> None:
    parser = tool_parser(__doc__)
    add_project_argument(parser)
    parser.add_argument(
        "--model",
        choices=paths.MODEL_NAMES,
        default="transfer",
        help="the model to train (default: %(default)s)",
    )
    parser.add_argument(
        "--averages",
        nargs="+",
        type=average_spec,
        required=True,
        metavar="AVERAGE",
        help=f"{RAW} (the weights themselves), a decay D, or D:warmup (timm's warm-up)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the Markdown table to write")
    args = parser.parse_args()
    check_split_project(args.project)
    out = args.out.resolve()
    provenance = parameters_used(args.project)
    print(provenance, flush=True)
    os.chdir(args.project)
    params = start_as_a_stage(keep_memory=True)  # trains as the stages do
    device = pick_device(params.train.device)
    configure(params.train, device)
    seed_everything(params.seed)
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    run = prepare_run(args.model, params, data, device)
    averages = Averages(run.model, args.averages, params)
    run = dataclasses.replace(run, ema=averages)  # the loop updates every average each step
    test_targets = torch.as_tensor(data.targets("test"))
    progress = {spec: Progress(select=params.train.select) for spec in args.averages}
    test_acc: dict[str, list[float]] = {spec: [] for spec in args.averages}
    header = " | ".join(f"{spec} val / test" for spec in args.averages)
    lines = [f"| epoch | {header} |", "|---" * (len(args.averages) + 1) + "|"]
    net = None
    started = time.perf_counter()
    for epoch in range(1, run.plan.epochs + 1):
        net = network_for_epoch(run, net, epoch)
        train_one_epoch(run, net, epoch)
        cells = []
        for spec in args.averages:
            model = averages.module(spec)
            val_loss, val_acc = loss_and_accuracy(
                model, run.val_batches.epoch(epoch), device, run.bfloat16
            )
            progress[spec].record({"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc})
            logits = split_logits(Trained(model, {}, ""), "test", data, cache, params.evaluate)
            test_acc[spec].append((logits.argmax(1) == test_targets).float().mean().item())
            cells.append(f"{100 * val_acc:.2f} / {100 * test_acc[spec][-1]:.2f}")
        lines.append(f"| {epoch} | {' | '.join(cells)} |")
        print(lines[-1], f"({time.perf_counter() - started:.0f} s)", flush=True)
    kept_epochs = {spec: progress[spec].best_epoch for spec in args.averages}
    kept = [
        f"epoch {epoch}: {100 * test_acc[spec][epoch - 1]:.2f}"
        for spec, epoch in kept_epochs.items()
    ]
    lines.append(f"| kept ({params.train.select}) | {' | '.join(kept)} |")
    out.write_text(
        f"{args.model} model, {run.plan.epochs} epochs, seed {params.seed}, "
        f"{len(test_targets)} test images; each cell: validation / test accuracy (%)\n\n"
        f"{provenance}\n\n" + "\n".join(lines) + "\n"
    )
    print(lines[-1], f"\nwrote {out}")


if __name__ == "__main__":
    main()
