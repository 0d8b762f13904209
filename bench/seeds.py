"""One model retrained at other seeds in a project a benchmark kept: how far does the seed move
its test accuracy, and is a change between two ways beyond that?

    python bench/seeds.py --project WORK/project --model transfer --seeds 1 2 --out OUT.md \\
        [--set transfer.epochs=6 ...]

WORK is a `bench/run.py --work WORK` folder (or any project whose models are trained). For each
seed, `dvc exp run -S seed=N` (and each --set) with train_<model> as its target, so the split and
check rerun with the seed and the other model is not retrained; then the evaluate stage by its
command, for the model's test accuracy. The other model's and the ensemble's figures that evaluate
writes mix seeds and are not reported. With --without-dvc (a machine without DVC) the stages up to
train_<model> run by their commands (bench/without_dvc.py). The table (rewritten after each seed,
so a stopped run keeps the seeds it finished): each seed's kept epoch, validation and test
accuracy, training images/s, and minutes. The project's workspace ends with the last seed's
parameters and models. A command stopped in a seed's training can be given again: the model's
checkpoint is not needed (DVC deleted it), and its stage resumes from the last finished epoch; that
seed's minutes, marked "resumed after epoch N", are not a whole run's.

Every seed starts from the same parameters, the --set ones over them: the profile's, which
bench/run.py keeps beside the project as WORK/profile-params.yaml (else the project's
params.yaml as the command finds it; --params FILE names another). `dvc exp run -S` leaves its
settings in the workspace, so without that reset one command's --set would still be in force
in the next command's runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/seeds.py`

from bench import without_dvc
from bench.machine import describe, run_measured
from bench.run import PROFILE_PARAMS, Pipeline, metrics
from bench.workspace import (
    add_project_argument,
    check_params,
    check_project,
    settings_with_known_keys,
    tool_parser,
)
from imgclf import paths
from imgclf.atomic import write_text
from imgclf.errors import UserError, exit_on_user_error
from imgclf.wording import counted

WITHOUT_DVC_SCRIPT = str(Path(without_dvc.__file__).resolve())


def build_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    add_project_argument(parser)
    parser.add_argument(
        "--model", choices=paths.MODEL_NAMES, required=True, help="the model to retrain"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", required=True, metavar="SEED", help="one run each"
    )
    parser.add_argument("--out", type=Path, required=True, help="the Markdown table to write")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter for every seed's run (one key each, repeatable)",
    )
    parser.add_argument(
        "--params",
        type=Path,
        metavar="FILE",
        help=f"the params.yaml every seed starts from (default: WORK/{PROFILE_PARAMS}, else "
        "the project's own as it is now)",
    )
    parser.add_argument(
        "--without-dvc", action="store_true", help="run the stages by their commands, no DVC"
    )
    return parser


@exit_on_user_error
def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    try:
        check_project(args.project, retrained=args.model)
        settings = settings_with_known_keys(args.set)
        if "seed" in settings:
            raise UserError("--set seed=...: give the seeds with --seeds")
        check_params(settings, "--set")
    except UserError as error:
        parser.error(str(error))
    if args.out.is_dir():
        parser.error(f"--out {args.out} is a folder: name the Markdown file to write")
    if args.params and not args.params.is_file():
        parser.error(f"--params {args.params}: no such file (a params.yaml to start from)")

    project = args.project.resolve()
    start_file = starting_params(project, args.params)
    pipeline = Pipeline(project, args.without_dvc, start_file)
    stage = paths.training_stage(args.model)
    runner = "its stages" if args.without_dvc else "dvc exp run"
    rows: list[str] = []
    for seed in args.seeds:
        started = time.perf_counter()
        try:
            name, changes = experiment_name(args.model, seed), settings | {"seed": seed}
            pipeline.rerun(name, changes, stage, upstream=True)
            run_measured([sys.executable, WITHOUT_DVC_SCRIPT, "evaluate"], project)
        except subprocess.CalledProcessError as error:
            raise SystemExit(
                f"seed {seed} failed ({runner} exited {error.returncode}; its output is above); "
                f"{args.out} holds the {counted(len(rows), 'seed')} before it"
            ) from None
        except KeyboardInterrupt:
            print(
                f"interrupted at seed {seed}; {args.out} holds the seeds before it", file=sys.stderr
            )
            sys.exit(130)
        rows.append(row(project, args.model, seed, time.perf_counter() - started))
        write_text(args.out, report(args, start_file, rows))
    print(report(args, start_file, rows))


def starting_params(project: Path, given: Path | None) -> Path:
    """The params.yaml each seed starts from: `given`, else the profile's that bench/run.py
    kept beside the project, else the project's own."""
    kept = project.parent / PROFILE_PARAMS
    return given or (kept if kept.is_file() else project / "params.yaml")


def experiment_name(model: str, seed: int) -> str:
    """Unique in the project, so a second command with the same seeds adds experiments."""
    return f"{model}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def row(project: Path, model: str, seed: int, seconds: float) -> str:
    stage = paths.training_stage(model)
    trained = metrics(project, stage)[model]
    tested = metrics(project, "evaluate")[model]
    timing = metrics(project, f"timing/{stage}")[model]
    # The project's own stages wrote it: one copied from before 9bd23b2 writes no such key.
    resumed_after = timing.get("resumed_after_epoch")
    minutes = f"{seconds / 60:.1f}" + (
        f" (resumed after epoch {resumed_after})" if resumed_after else ""
    )
    return (
        f"| {seed} | {trained['kept_epoch']} of {trained['epochs_trained']} |"
        f" {trained['val_acc']:.2%} | {tested['test_acc']:.2%} | {timing['images_per_s']:.0f} |"
        f" {minutes} |"
    )


def title(model: str, seeds: list[int]) -> str:
    """The report's title: "The scratch model at seed 0", "... at seeds 1, 2"."""
    noun = "seed" if len(seeds) == 1 else "seeds"
    return f"The {model} model at {noun} {', '.join(map(str, seeds))}"


def report(args: argparse.Namespace, start_file: Path, rows: list[str]) -> str:
    changed = ", ".join(f"`{setting}`" for setting in args.set) or "none"
    return (
        f"# {title(args.model, args.seeds)}\n\n"
        f"Project: `{args.project}`, each seed starting from `{start_file}` with these over"
        f" it: {changed}\n\n"
        f"Machine: {describe()}\n\n"
        "| seed | epoch kept | val accuracy (kept) | test accuracy | training images/s"
        " | minutes |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "Minutes: the split, check, training and evaluation of that seed (of a resumed seed,"
        " only the epochs after the resume; its images/s too).\n\n"
        f"Command: `python bench/seeds.py {' '.join(sys.argv[1:])}`\n"
    )


if __name__ == "__main__":
    main()
