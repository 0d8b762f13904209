"""Training steps with glibc's malloc as it comes against the freed memory kept
(imgclf.runtime.keep_freed_memory, which the training stages call), for both models.

Each measurement is bench/throughput.py's (real steps, after whole epochs of warm-up) in a
process of its own, since malloc's settings last as long as the process; the two settings
alternate for --rounds rounds, so that a drift of the machine falls on both. The table gives
each round's images/s, the ratio of the medians, and each process's minor page faults (the
pages the kernel handed over, zeroed) and peak memory:

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/allocator.py`

from bench.ablation import checked_settings
from bench.machine import describe
from bench.throughput import STEADY_SCHEDULE, add_step_arguments, measure, out_file, split_project
from bench.workspace import ENV, add_run_arguments, write_params
from imgclf import paths
from imgclf.atomic import write_text
from imgclf.errors import exit_on_user_error

SETTINGS = {"as it comes": False, "kept": True}  # the label, and measure's keep_memory


def measure_here(name: str, steps: int, keep_memory: bool) -> None:
    """In the project folder: measure, and print the figures as one line of JSON."""
    rate = measure(name, steps, keep_memory)["real"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"real": rate, "faults": usage.ru_minflt, "peak_kib": usage.ru_maxrss}))


def measure_apart(project: Path, name: str, steps: int, keep_memory: bool) -> dict[str, float]:
    """measure_here in a new process in `project`."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--measure-here",
        name,
        str(steps),
        str(keep_memory),
    ]
    result = subprocess.run(command, cwd=project, env=ENV, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def table(rounds: dict[tuple[str, str], list[dict[str, float]]], heading: str) -> str:
    lines = [
        heading,
        "",
        "| model | malloc | images/s, each round | median | ratio to as it comes "
        "| minor page faults of its process, median | peak memory, median |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in paths.MODEL_NAMES:
        base = statistics.median(r["real"] for r in rounds[name, "as it comes"])
        for label in SETTINGS:
            runs = rounds[name, label]
            median = statistics.median(r["real"] for r in runs)
            faults = statistics.median(r["faults"] for r in runs)
            peak = statistics.median(r["peak_kib"] for r in runs) / 2**20
            each = ", ".join(f"{r['real']:.1f}" for r in runs)
            lines.append(
                f"| {name} | {label} | {each} | {median:.1f} | {median / base:.2f} "
                f"| {faults / 1e6:.2f} million | {peak:.2f} GiB |"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        name, steps, keep_memory = sys.argv[2:5]
        measure_here(name, int(steps), keep_memory == "True")
        return
    parser = build_parser()
    args = parser.parse_args()
    out = out_file(parser, args)
    _, profile = checked_settings(parser, args)
    rounds: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        project = split_project(Path(folder), args, profile)
        write_params(project / "params.yaml", project / "params.yaml", STEADY_SCHEDULE)
        for round_number in range(1, args.rounds + 1):
            for label, keep_memory in SETTINGS.items():
                for name in paths.MODEL_NAMES:
                    figures = measure_apart(project, name, args.steps, keep_memory)
                    rounds.setdefault((name, label), []).append(figures)
                    print(f"round {round_number}, {name}, {label}: {figures}", flush=True)
    settings = f" with {' '.join(args.set)}" if args.set else ""
    heading = (
        f"Training images/s (real steps), profile {args.profile}{settings}, {args.steps} steps "
        f"after whole epochs of warm-up, {args.rounds} rounds ({describe()}):"
    )
    result = table(rounds, heading)
    print(result)
    if out:
        command = f"Command: `python bench/allocator.py {' '.join(sys.argv[1:])}`"
        write_text(out, f"{result}\n\n{command}\n")


if __name__ == "__main__":
    main()
