"""What each ingredient of the training recipe buys: the full recipe (a profile), then the same
with one ingredient switched off at a time, each a `dvc exp run` in one temporary project
(so only the stages an ingredient touches run again), and the full recipe with a second seed
for the noise. A Markdown table: each model's and the ensemble's test accuracy, the change
against the full recipe in points, and the minutes each run took.

    python bench/ablation.py --data ../shared/datasets/intel-scenes --profile proxy --out OUT
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/ablation.py`

from bench.machine import describe, run_measured
from bench.run import data_view, exp_run, metrics
from bench.workspace import copy_project, load_profile

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


def accuracies(project: Path) -> dict[str, float]:
    tested = metrics(project, "evaluate")
    return {model: 100 * tested[model]["test_acc"] for model in MODELS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--profile", default="proxy")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--second-seed", type=int, default=1)
    args = parser.parse_args()
    profile = load_profile(args.profile)
    unset = sorted({key for off in WITHOUT.values() for key in off} - set(profile))
    if unset:  # each run must set the recipe afresh, or the last run's switch would stay off
        raise SystemExit(f"profile {args.profile} must set every ingredient; it lacks {unset}")
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[str, float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        data = data_view(args.data.resolve(), work / "data")
        project = copy_project(work / "project", {"data.root": str(data)})

        def run(label: str, changes: dict) -> None:
            started = time.perf_counter()
            run_measured(exp_run(f"ablation-{len(runs)}", {**profile, **changes}), project)
            runs.append((label, (time.perf_counter() - started) / 60, accuracies(project)))

        run("full recipe", {})
        for ingredient, off in WITHOUT.items():
            run(f"without {ingredient}", off)
        run(f"full recipe, seed {args.second_seed}", {"seed": args.second_seed})

    full = runs[0][2]
    lines = [
        "| run | minutes | " + " | ".join(f"{m} test acc (change)" for m in MODELS) + " |",
        "|---|---|" + "---|" * len(MODELS),
    ]
    for label, minutes, accuracy in runs:
        cells = [f"{accuracy[m]:.2f} % ({accuracy[m] - full[m]:+.2f})" for m in MODELS]
        lines.append(f"| {label} | {minutes:.1f} | " + " | ".join(cells) + " |")
    report = (
        f"# Ablation: profile `{args.profile}` on `{args.data}`\n\n"
        f"Machine: {describe()}\n\n"
        "Each row switches one ingredient off (its change: this row minus the full recipe, in "
        "points; a negative change means the ingredient helps). The minutes are of that "
        "`dvc exp run`, which reruns only the stages the change touches. The last row is the "
        "full recipe with another seed: changes smaller than its own are noise.\n\n"
        + "\n".join(lines)
        + f"\n\nCommand: `python bench/ablation.py {' '.join(sys.argv[1:])}`\n"
    )
    (args.out / "ablation.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
