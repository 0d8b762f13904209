"""Training throughput against its bound, for both models, measured in one run:

- real steps: the training input path (batches held on the device or streamed, as
  train.data_on_device decides, augmentation on the device) and the optimisation step, timed
  from an epoch's start after at least one whole epoch, so that every batch shape has been
  seen once (cuDNN's autotuning of the epoch's smaller last batch is a one-off cost of the
  stage, not of its steps);
- the bound: the same step fed one augmented batch already on the device, over and over;
- their ratio; and with --stage, the training stage itself, end to end (validation,
  checkpoints and start-up included): epochs x training images / stage wall time.

With --compile the model is compiled first, and the compile time is reported on its own.
With --compare KEY=A,B the steps are measured at each value in turn, in the same run:

    python bench/throughput.py --data ../shared/datasets/intel-scenes --profile gpu [--compile]
    python bench/throughput.py --data DIR --profile cpu --compare train.precision=float32,bfloat16

With --without-dvc (a machine without DVC) the data is prepared by the stages' own commands.
With --out FILE the table is also written to FILE, with the command line that made it. The
keys of --set and --compare and the --data folder are checked before any work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import count, islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/throughput.py`

import torch

from bench import without_dvc
from bench.ablation import checked_settings
from bench.machine import describe, images_per_second, run_measured, run_training_stage
from bench.workspace import (
    add_run_arguments,
    check_params,
    copy_project,
    parse_settings,
    tool_parser,
    write_params,
)
from imgclf import paths
from imgclf.atomic import write_text
from imgclf.config import Params, load_params
from imgclf.errors import UserError, exit_on_user_error
from imgclf.loader import Batch, Batches
from imgclf.runtime import configure, keep_freed_memory, pick_device, pin_cpu_arithmetic
from imgclf.samples import load_split_data
from imgclf.train import prepare_run, train_step, training_input, wrap

WARMUP = 5  # the fewest steps before the clock starts (after compiling, if asked)

# The step costs the same at any learning rate; a one-cycle schedule would end first.
STEADY_SCHEDULE = {"train.schedule": "constant"}


def warmup_steps(batches: Batches) -> int:
    """Real steps before the clock starts, after the first: whole epochs, at least WARMUP
    steps. A new batch shape costs a one-off autotuning (cuDNN's, with train.deterministic
    false), and the epoch's last batch is smaller: on an H200 the gpu profile's transfer step
    measured 421 images/s with that autotuning inside the timed steps, 2,048 without it."""
    epochs = math.ceil((1 + WARMUP) / len(batches))
    return epochs * len(batches) - 1


def endless(batches: Batches) -> Iterator[Batch]:
    """Epoch after epoch of training batches, as training draws them."""
    epoch = 1
    while True:
        yield from batches.epoch(epoch)
        epoch += 1


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bound_rate(step: Callable[[Batch], object], batch: Batch, steps: int) -> float:
    """Images/s of `step` fed the one `batch` over and over: `steps` timed after WARMUP."""
    return images_per_second(step, [batch] * (WARMUP + steps), warmup=WARMUP)


def start_as_a_stage(keep_memory: bool) -> Params:
    """The project's parameters, with the CPU's arithmetic pinned and, if `keep_memory`, glibc's
    malloc keeping freed memory: how the stages start (bench/allocator.py compares both)."""
    params = load_params()
    pin_cpu_arithmetic(params.train)
    if keep_memory:
        keep_freed_memory()
    return params


def measure(name: str, steps: int, keep_memory: bool = True) -> dict[str, float]:
    """Real and bound images/s of one model's training step, and its first step's seconds
    (which include torch.compile's compiling when it is on); `keep_memory` as in
    start_as_a_stage."""
    params = start_as_a_stage(keep_memory)
    device = pick_device(params.train.device)
    configure(params.train, device)
    run = prepare_run(name, params, load_split_data(paths.MANIFEST, paths.SPLIT), device)
    # as in the epochs after transfer.frozen_epochs
    run.model.freeze_backbone(run.plan.frozen_share)
    net = wrap(run.model, params, device)
    net.train()
    rng = torch.Generator(device).manual_seed(0)
    size = run.model.input_size
    step_numbers = count()  # the moving average's warm-up follows the step number

    def real(batch: Batch) -> None:
        inputs = training_input(batch[0], params.augment, rng, size)
        train_step(run, net, inputs, batch[1], next(step_numbers))

    batches = endless(run.train_batches)
    first = next(batches)
    started = time.perf_counter()
    real(first)
    synchronize(device)
    first_step = time.perf_counter() - started
    warmup = warmup_steps(run.train_batches)
    real_rate = images_per_second(real, islice(batches, warmup + steps), warmup)
    synthetic = (training_input(first[0], params.augment, rng, size), first[1])
    bound = bound_rate(lambda b: train_step(run, net, *b, next(step_numbers)), synthetic, steps)
    return {"real": real_rate, "bound": bound, "first_step_s": first_step}


def split_project(folder: Path, args: argparse.Namespace, profile: dict[str, Any]) -> Path:
    """A copy of the project in `folder` with the profile's parameters (and args.data,
    args.compile), its data prepared and split: what a training stage reads."""
    project = copy_project(
        folder / "project",
        {**profile, "data.root": str(args.data.resolve()), "train.compile": args.compile},
        repository=not args.without_dvc,
    )
    if args.without_dvc:
        without_dvc.run(project, without_dvc.stages_for(project, ("split",)))
    else:
        run_measured(["dvc", "repro", "split"], project)
    return project


def stage_rate(project: Path, name: str) -> float:
    """The training stage end to end: epochs x training images / stage wall seconds."""
    seconds, _ = run_training_stage(project, name)
    trained = json.loads((project / paths.train_metrics(name)).read_text())[name]
    images = len(load_split_data(project / paths.MANIFEST, project / paths.SPLIT).indices("train"))
    return trained["epochs_trained"] * images / seconds


def compared_values(compare: str | None) -> tuple[str | None, list[Any]]:
    """`KEY=A,B` as the key and its values, parsed as params.yaml would read them."""
    if not compare:
        return None, [None]
    key, _, values = compare.partition("=")
    return key, [parse_settings([f"{key}={value}"])[key] for value in values.split(",")]


def heading(args: argparse.Namespace, compared_key: str | None) -> str:
    """What the table measured, and its header row."""
    compiled = "on" if args.compile else "off"
    if compared_key == "train.compile":
        compiled = "as each row says"
    settings = f" with {' '.join(args.set)}" if args.set else ""
    return (
        f"Training images/s, profile {args.profile}{settings}, {args.steps} steps "
        f"after whole epochs of warm-up (the bound: after {WARMUP} steps), torch.compile "
        f"{compiled} ({describe()}):\n\n"
        "| model | real steps | synthetic batch on the device (bound) | ratio | first step s "
        "| training stage, end to end |\n|---|---|---|---|---|---|"
    )


def add_step_arguments(parser: argparse.ArgumentParser, default_steps: int) -> None:
    """--steps, --without-dvc and --out, as the benchmarks that time training steps take them."""
    parser.add_argument(
        "--steps",
        type=int,
        default=default_steps,
        help="timed steps, after warm-up (default: %(default)s)",
    )
    parser.add_argument("--without-dvc", action="store_true", help="prepare the data without DVC")
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="also write the table to FILE, with the command"
    )


def out_file(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path | None:
    """--out as an absolute path (the benchmark enters its copy of the project), never a
    folder."""
    if args.out and args.out.is_dir():
        parser.error(f"--out {args.out} is a folder: name the file to write the table to")
    return args.out.resolve() if args.out else None


def publish(table: str, out: Path | None) -> None:
    """Print the table and, with --out, write it to that file with the command that made it."""
    print(table)
    if out:
        command = f"Command: `python bench/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`"
        write_text(out, f"{table}\n\n{command}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    add_run_arguments(parser, default_profile="gpu")
    add_step_arguments(parser, default_steps=300)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--stage", action="store_true", help="also run each training stage")
    parser.add_argument(
        "--compare",
        metavar="KEY=A,B",
        help="measure the steps at each value of the params.yaml key KEY",
    )
    return parser


@exit_on_user_error
def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.compare and args.stage:
        parser.error("--stage runs the profile as it is: leave out --compare")
    if args.compare is not None and not all(args.compare.partition("=")):
        parser.error(f"--compare takes KEY=A,B (values comma-separated): got {args.compare}")
    out = out_file(parser, args)
    key, values = compared_values(args.compare)
    _, profile = checked_settings(parser, args, [key] if key else [])
    try:
        for value in values if key else []:
            check_params(profile | {key: value}, "--compare")
    except UserError as error:
        parser.error(str(error))
    with tempfile.TemporaryDirectory() as folder:
        project = split_project(Path(folder), args, profile)
        os.chdir(project)
        params_file = project / "params.yaml"
        as_profiled = params_file.read_text()
        rows = {}
        for value in values:
            changes = STEADY_SCHEDULE | ({key: value} if key else {})
            write_params(params_file, params_file, changes)
            for name in paths.MODEL_NAMES:
                rows[f"{name} {key}={value}" if key else name] = measure(name, args.steps)
            params_file.write_text(as_profiled)
        if args.stage:
            for name in paths.MODEL_NAMES:
                rows[name]["stage"] = stage_rate(project, name)
    table = "\n".join([heading(args, key), *(table_row(name, row) for name, row in rows.items())])
    publish(table, out)


def table_row(name: str, row: dict[str, float]) -> str:
    stage = f"{row['stage']:.0f}" if "stage" in row else "not run (--stage)"
    return (
        f"| {name} | {row['real']:.0f} | {row['bound']:.0f} | {row['real'] / row['bound']:.2f} "
        f"| {row['first_step_s']:.1f} | {stage} |"
    )


if __name__ == "__main__":
    main()
