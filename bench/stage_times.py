"""Whole stages of a trained project timed under two or more variants, alternating, each run
by its command in a process of its own: wall seconds, the peak memory of its processes, and
whether every run of a stage wrote the same bytes.

    python bench/stage_times.py --project WORK/project --stages evaluate make_submission \\
        export --compare malloc --out FILE
    python bench/stage_times.py --project WORK/project --stages evaluate make_submission \\
        --compare evaluate.batch_size=256,64 --out FILE

WORK is a `bench/run.py --work WORK` folder (or any project whose models are trained).
`--compare malloc`: glibc's malloc as it comes (imgclf.runtime.keep_freed_memory replaced by
a no-op before the stage imports it) against the freed memory kept, as the stages run it (with
another C library the two are the same);
`--compare KEY=A,B`: the project's params.yaml with KEY at each value, put back as it was at
the end. Within each round every stage runs once under each variant, one after the other, so
that a drift of the machine falls on all of them. The stages rewrite their outputs in the
project: it ends with the last run's.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/stage_times.py`

from bench.machine import describe, run_measured
from bench.throughput import compared_values, out_file, publish
from bench.without_dvc import OUTPUTS, paths_of
from bench.workspace import (
    add_project_argument,
    check_keys,
    check_params,
    check_project,
    tool_parser,
    write_params,
)
from imgclf.config import read_yaml
from imgclf.errors import UserError, exit_on_user_error

MALLOC = "malloc"
# Run before the stage's module: the stage then imports the no-op (as imgclf.train does).
AS_IT_COMES = "import imgclf.runtime\nimgclf.runtime.keep_freed_memory = lambda: None\n"


@dataclass(frozen=True)
class Variant:
    label: str
    prelude: str  # Python run in the stage's process before its module
    params: dict[str, Any]  # params.yaml's changes


def variants(compare: str) -> list[Variant]:
    """`malloc`, or KEY=A,B: one variant per value."""
    if compare == MALLOC:
        return [Variant("malloc as it comes", AS_IT_COMES, {}), Variant("kept", "", {})]
    key, values = compared_values(compare)
    assert key is not None
    return [Variant(f"{key}={value}", "", {key: value}) for value in values]


def stage_command(stage: str, prelude: str = "") -> list[str]:
    """The stage's module run as `python -m stages.<stage>` runs it, after `prelude`."""
    run = f"import runpy\nrunpy.run_module('stages.{stage}', run_name='__main__')\n"
    return [sys.executable, "-c", prelude + run]


def outputs_digest(project: Path, stage: str) -> str:
    """SHA-256 of every file the stage writes (its outs, metrics and plots in dvc.yaml)."""
    digest = hashlib.sha256()
    stages = read_yaml(project / "dvc.yaml")["stages"]
    for out in sorted(paths_of(stages[stage], OUTPUTS)):
        path = project / out
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in (each for each in files if each.is_file()):
            digest.update(str(file.relative_to(project)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


@dataclass
class Run:
    seconds: float
    peak_mib: float
    digest: str


def time_stages(
    project: Path, stages: list[str], compared: list[Variant], rounds: int
) -> dict[tuple[str, str], list[Run]]:
    """Every stage under every variant, `rounds` times, alternating; params.yaml put back."""
    params = project / "params.yaml"
    original = params.read_bytes()
    runs: dict[tuple[str, str], list[Run]] = {}
    try:
        for round_number in range(1, rounds + 1):
            for stage in stages:
                for variant in compared:
                    params.write_bytes(original)
                    write_params(params, params, variant.params)
                    run = run_once(project, stage, variant)
                    runs.setdefault((stage, variant.label), []).append(run)
                    print(
                        f"round {round_number}, {stage}, {variant.label}: {run.seconds:.1f} s, "
                        f"peak {run.peak_mib / 1024:.2f} GiB",
                        flush=True,
                    )
    finally:
        params.write_bytes(original)
    return runs


def run_once(project: Path, stage: str, variant: Variant) -> Run:
    """The stage run by its command under `variant`, whose parameters params.yaml holds."""
    try:
        seconds, peak = run_measured(stage_command(stage, variant.prelude), project)
    except subprocess.CalledProcessError as error:
        raise SystemExit(
            f"stage {stage} failed under {variant.label} (exit code {error.returncode}; its "
            "output is above); params.yaml is put back as it was"
        ) from None
    return Run(seconds, peak, outputs_digest(project, stage))


def report(runs: dict[tuple[str, str], list[Run]], compared: list[Variant], heading: str) -> str:
    first = compared[0].label
    lines = [
        heading,
        "",
        f"| stage | variant | seconds, each round | median | ratio to {first} "
        "| peak memory of its processes, median |",
        "|---|---|---|---|---|---|",
    ]
    stages = list(dict.fromkeys(stage for stage, _ in runs))
    for stage in stages:
        base = statistics.median(run.seconds for run in runs[stage, first])
        for variant in compared:
            each = runs[stage, variant.label]
            median = statistics.median(run.seconds for run in each)
            peak = statistics.median(run.peak_mib for run in each) / 1024
            seconds = ", ".join(f"{run.seconds:.1f}" for run in each)
            lines.append(
                f"| {stage} | {variant.label} | {seconds} | {median:.1f} | {median / base:.2f} "
                f"| {peak:.2f} GiB |"
            )
    lines.append("")
    for stage in stages:
        digests = {run.digest for (name, _), each in runs.items() if name == stage for run in each}
        same = "the same bytes in every run" if len(digests) == 1 else "different bytes"
        lines.append(f"Outputs of {stage}: {same}.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    add_project_argument(parser)
    parser.add_argument(
        "--stages", nargs="+", required=True, metavar="STAGE", help="the dvc.yaml stages to time"
    )
    parser.add_argument(
        "--compare",
        required=True,
        metavar="malloc|KEY=A,B",
        help="malloc as it comes against kept, or a parameter's values (comma-separated)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="runs of each stage and variant (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="also write the table to FILE, with the command"
    )
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Variant]:
    """The variants to compare, once every argument is known to be usable."""
    if args.compare != MALLOC and not all(args.compare.partition("=")):
        parser.error(f"--compare takes malloc or KEY=A,B (comma-separated): got {args.compare}")
    try:
        check_project(args.project)
        compared = variants(args.compare)
        for variant in compared:
            check_keys(list(variant.params), "--compare")
            check_params(variant.params, "--compare")
    except UserError as error:
        parser.error(str(error))
    known = read_yaml(args.project / "dvc.yaml")["stages"]
    unknown = [stage for stage in args.stages if stage not in known]
    if unknown:
        parser.error(f"--stages: {args.project}/dvc.yaml has no {', '.join(unknown)}")
    return compared


@exit_on_user_error
def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    compared = check_arguments(parser, args)
    out = out_file(parser, args)
    runs = time_stages(args.project.resolve(), args.stages, compared, args.rounds)
    heading = (
        f"Whole stages of `{args.project}`, each run by its command, {args.rounds} rounds "
        f"alternating ({describe()}):"
    )
    result = report(runs, compared, heading)
    publish(result, out)


if __name__ == "__main__":
    main()
