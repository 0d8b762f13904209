"""Training steps and inference with glibc's malloc as it comes against the freed memory kept
(imgclf.runtime.keep_freed_memory, which the stages that run a network call), for both models.

Training is bench/throughput.py's measurement (real steps, after whole epochs of warm-up);
inference is the evaluate stage's prediction of the test split (evaluate.batch_size,
evaluate.tta_flip) by the model as built for training, after one batch of warm-up. Each
measurement runs in a process of its own, since malloc's settings last as long as the process;
the two settings alternate for --rounds rounds, so that a drift of the machine falls on both.
The table gives each round's images/s, the ratio of the medians, and each process's minor page
faults (the pages the kernel handed over, zeroed) and peak memory:

    python bench/allocator.py --without-dvc --data ../shared/datasets/intel-scenes \\
        --profile cpu --set split.max_train_per_class=100 --out FILE
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/allocator.py`

from bench.ablation import checked_settings
from bench.machine import describe
from bench.throughput import (
    STEADY_SCHEDULE,
    add_step_arguments,
    measure,
    out_file,
    publish,
    split_project,
    start_as_a_stage,
)
from bench.workspace import ENV, add_run_arguments, tool_parser, write_params
from imgclf import paths
from imgclf.cache import ImageCache
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import Trained, predict
from imgclf.models import build_model
from imgclf.samples import load_split_data
from imgclf.train import model_spec

SETTINGS = {"as it comes": False, "kept": True}  # the label, and measure's keep_memory
PHASES = ("training", "inference")


def inference_rate(name: str, keep_memory: bool) -> float:
    """Test images/s of the evaluate stage's prediction, the model untrained (the arithmetic
    is the same), after a warm-up batch."""
    params = start_as_a_stage(keep_memory)
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    model = build_model(**model_spec(name, params, len(data.classes)))
    untrained = Trained(model, meta={}, weights_sha256="")  # predict reads the model alone
    cache, test = ImageCache(paths.CACHE), data.indices("test")
    batch_size, tta_flip = params.evaluate.batch_size, params.evaluate.tta_flip
    predict(untrained, cache, test[:batch_size], batch_size, tta_flip)
    started = time.perf_counter()
    predict(untrained, cache, test, batch_size, tta_flip)
    return len(test) / (time.perf_counter() - started)


def measure_here(phase: str, name: str, steps: int, keep_memory: bool) -> None:
    """In the project folder: measure, and print the figures as one line of JSON."""
    if phase == "training":
        rate = measure(name, steps, keep_memory)["real"]
    else:
        rate = inference_rate(name, keep_memory)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"real": rate, "faults": usage.ru_minflt, "peak_kib": usage.ru_maxrss}))


def measure_apart(
    project: Path, phase: str, name: str, steps: int, keep_memory: bool
) -> dict[str, float]:
    """measure_here in a new process in `project`."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--measure-here",
        phase,
        name,
        str(steps),
        str(keep_memory),
    ]
    result = subprocess.run(command, cwd=project, env=ENV, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def table(rounds: dict[tuple[str, str, str], list[dict[str, float]]], heading: str) -> str:
    """One row per model, phase and setting, in that order; `rounds` maps each to its rounds."""
    lines = [
        heading,
        "",
        "| model | phase | malloc | images/s, each round | median | ratio to as it comes "
        "| minor page faults of its process, median | peak memory, median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, phase in dict.fromkeys((name, phase) for name, phase, _ in rounds):
        base = statistics.median(r["real"] for r in rounds[name, phase, "as it comes"])
        for label in SETTINGS:
            runs = rounds[name, phase, label]
            median = statistics.median(r["real"] for r in runs)
            faults = statistics.median(r["faults"] for r in runs)
            peak = statistics.median(r["peak_kib"] for r in runs) / 2**20
            each = ", ".join(f"{r['real']:.1f}" for r in runs)
            lines.append(
                f"| {name} | {phase} | {label} | {each} | {median:.1f} | {median / base:.2f} "
                f"| {faults / 1e6:.2f} million | {peak:.2f} GiB |"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    add_run_arguments(parser, default_profile="cpu")
    add_step_arguments(parser, default_steps=20)
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements of each (default: %(default)s)"
    )
    parser.set_defaults(compile=False)
    return parser


@exit_on_user_error
def main() -> None:
    if sys.argv[1:2] == ["--measure-here"]:
        phase, name, steps, keep_memory = sys.argv[2:6]
        measure_here(phase, name, int(steps), keep_memory == "True")
        return
    parser = build_parser()
    args = parser.parse_args()
    out = out_file(parser, args)
    _, profile = checked_settings(parser, args)
    rounds: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        project = split_project(Path(folder), args, profile)
        write_params(project / "params.yaml", project / "params.yaml", STEADY_SCHEDULE)
        for round_number in range(1, args.rounds + 1):
            for label, keep_memory in SETTINGS.items():
                for name in paths.MODEL_NAMES:
                    for phase in PHASES:
                        figures = measure_apart(project, phase, name, args.steps, keep_memory)
                        rounds.setdefault((name, phase, label), []).append(figures)
                        print(
                            f"round {round_number}, {name}, {phase}, {label}: {figures}", flush=True
                        )
    settings = f" with {' '.join(args.set)}" if args.set else ""
    heading = (
        f"Images/s, profile {args.profile}{settings}: training's real steps, {args.steps} "
        f"after whole epochs of warm-up, and inference on the test split; {args.rounds} rounds "
        f"({describe()}):"
    )
    result = table(rounds, heading)
    publish(result, out)


if __name__ == "__main__":
    main()
