"""What each ingredient of the training recipe buys, or what a variant of a profile changes:
the profile as it is, then the same with one change at a time, each a `dvc exp run` in one
temporary project (so only the stages a change touches run again), and the profile with a
second seed for the noise. A Markdown table: each model's and the ensemble's test accuracy,
the change against the profile in points, and the minutes each run took. With --without-dvc
(a machine without DVC, such as a lent GPU machine) each run is the whole pipeline, run by
its stages' commands (bench/without_dvc.py).

    python bench/ablation.py --data ../shared/datasets/intel-scenes --profile proxy --out OUT
    python bench/ablation.py --data DIR --profile cpu --out OUT \\
        --variant scratch.epochs=45 --variant train.weight_decay=0.05,scratch.width=40
    python bench/ablation.py --data DIR --profile cpu --set transfer.epochs=1 --out OUT \\
        --variant scratch.optimizer=sgd,scratch.lr_mult=25    # the scratch model, cheaply

Without --variant each row switches one ingredient of the recipe off (WITHOUT below).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/ablation.py`

from bench.machine import describe
from bench.run import Pipeline, data_view, metrics
from bench.workspace import (
    ROOT,
    add_run_arguments,
    check_data,
    check_keys,
    checked_profile,
    copy_project,
    flatten,
    parse_settings,
    tool_parser,
)
from imgclf.atomic import write_text
from imgclf.config import read_yaml
from imgclf.errors import UserError, exit_on_user_error
from imgclf.wording import counted

# ingredient -> the parameters that switch it off (the recipe's value is the profile's)
WITHOUT = {
    "moving average of the weights": {"train.ema_decay": 0.0},
    "mixup and cutmix": {"train.mixup": 0.0, "train.cutmix": 0.0},
    "TrivialAugment policy (keras affine instead)": {"augment.policy": "keras"},
    "label smoothing": {"train.label_smoothing": 0.0},
    "kept epoch by val_acc (val_loss instead)": {"train.select": "val_loss"},
    "no weight decay on norms and biases": {"train.decay_norm_and_bias": True},
    "layer-wise lr decay": {"transfer.layer_decay": 1.0},
    "copies kept together in the split": {"split.keep_copies_together": False},
    "test-time flips": {"evaluate.tta_flip": False},
}
MODELS = ("scratch", "transfer", "ensemble")
REPORT = "ablation.md"

Settings = dict[str, Any]


def planned_runs(
    profile: Settings, defaults: Settings, changes: list[tuple[str, Settings]], second_seed: int
) -> list[tuple[str, Settings]]:
    """Each run's label and the settings it passes to `dvc exp run`: the profile, then each
    change on top of it, then the profile with `second_seed` (each run starts from params.yaml's
    `defaults`: bench/run.py's Pipeline). A change the profile already has (an ingredient it
    leaves off) gets no run."""
    profiled = defaults | profile
    return [
        ("the profile", profile),
        *((label, profile | change) for label, change in changes if profiled | change != profiled),
        (f"the profile, seed {second_seed}", profile | {"seed": second_seed}),
    ]


def changed_keys(changes: list[tuple[str, Settings]]) -> list[str]:
    return sorted({key for _, change in changes for key in change})


def variant(text: str) -> tuple[str, Settings]:
    """`--variant KEY=VALUE[,KEY=VALUE...]` as a row label and its settings."""
    return f"with {text}", parse_settings(text.split(","))


def accuracies(project: Path) -> dict[str, float]:
    tested = metrics(project, "evaluate")
    return {model: 100 * tested[model]["test_acc"] for model in MODELS}


def results_table(runs: list[tuple[str, float, dict[str, float]]]) -> str:
    """One row per run: its minutes, and each model's accuracy with its change against the
    first run's in points."""
    first = runs[0][2]
    lines = [
        "| run | minutes | " + " | ".join(f"{m} test acc (change)" for m in MODELS) + " |",
        "|---|---|" + "---|" * len(MODELS),
    ]
    for label, minutes, accuracy in runs:
        cells = [f"{accuracy[m]:.2f} % ({accuracy[m] - first[m]:+.2f})" for m in MODELS]
        lines.append(f"| {label} | {minutes:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checked_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace, keys: Iterable[str] = ()
) -> tuple[Settings, Settings]:
    """params.yaml's values, and the profile (`args.profile`) with `args.set` over it, as
    dotted keys, checked before any work (bench/throughput.py's too): `keys` and every key and
    value of --set and the profile against params.yaml, and `args.data` for the training folder
    those settings name. If not, the command stops here (exit status 2: its usage, and one line
    saying what is wrong)."""
    try:
        check_keys(list(keys), "the changes")
        profile = checked_profile(args.profile, args.set)
        check_data(args.data, profile)
    except UserError as error:
        parser.error(str(error))
    return flatten(read_yaml(ROOT / "params.yaml")), profile


def build_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    add_run_arguments(parser, default_profile="proxy")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help=f"the folder to write {REPORT} into (rewritten after each run)",
    )
    parser.add_argument(
        "--second-seed",
        type=int,
        default=1,
        metavar="SEED",
        help="the seed of the last row, the profile rerun to show the noise (default: %(default)s)",
    )
    parser.add_argument(
        "--without-dvc", action="store_true", help="run the stages by their commands, no DVC"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="a row with these settings over the profile, instead of the ingredients' rows",
    )
    return parser


@exit_on_user_error
def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.variant:
        changes = [variant(text) for text in args.variant]
        explained = "Each row after the first changes the profile as it says"
    else:
        changes = [(f"without {name}", off) for name, off in WITHOUT.items()]
        explained = "Each row after the first switches one ingredient off"
    defaults, profile = checked_settings(parser, args, changed_keys(changes))
    plan = planned_runs(profile, defaults, changes, args.second_seed)
    planned = {label for label, _ in plan}
    already = [label for label, _ in changes if label not in planned]
    if already:
        explained += f" (none for {', '.join(already)}: the profile has it so already)"
    title = f"# Ablation: profile `{args.profile}` on `{args.data}`\n\n"
    header = (
        f"Machine: {describe()}\n\n"
        f"{explained} (its change: this row minus the profile, in points; a positive change "
        f"means the row does better than the profile). {minutes_of(args.without_dvc)} The "
        "last row is the profile with another seed: changes smaller than its own are noise.\n\n"
    )
    command = f"Command: `python bench/ablation.py {' '.join(sys.argv[1:])}`\n"
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[str, float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        data = data_view(args.data.resolve(), work / "data")
        project = copy_project(work / "project", {"data.root": str(data)}, not args.without_dvc)
        pipeline = Pipeline(project, args.without_dvc)
        runner = "its stages" if args.without_dvc else "dvc exp run"
        for number, (label, settings) in enumerate(plan):
            started = time.perf_counter()
            kept = f"{args.out / REPORT} holds the {counted(len(runs), 'run')} before it"
            kept = kept if runs else "no run finished before it"
            try:
                pipeline.run(f"ablation-{number}", settings)
            except subprocess.CalledProcessError as error:
                raise SystemExit(
                    f"the run '{label}' failed ({runner} exited {error.returncode}; its "
                    f"output is above); {kept}"
                ) from None
            except KeyboardInterrupt:
                print(f"interrupted during the run '{label}'; {kept}", file=sys.stderr)
                sys.exit(130)
            runs.append((label, (time.perf_counter() - started) / 60, accuracies(project)))
            report = f"{title}{progress(len(runs), len(plan))}{header}{results_table(runs)}"
            report += f"\n\n{command}"
            write_text(args.out / REPORT, report)  # each run's row kept, whatever follows
    print(report)


def progress(done: int, planned: int) -> str:
    """The report's warning while it lacks rows: nothing once every run is in."""
    if done == planned:
        return ""
    return (
        f"**Unfinished: {done} of {planned} runs done.** The command is still running, failed "
        "or was stopped: the rows below are the runs that finished.\n\n"
    )


def minutes_of(without_dvc: bool) -> str:
    if without_dvc:
        return "The minutes are of the whole pipeline, every stage run by its command."
    return "The minutes are of that `dvc exp run`, which reruns only the stages the change touches."


if __name__ == "__main__":
    main()
