"""Benchmark: the real pipeline on a data folder, both models, and a results table.

    python bench/run.py --data ../shared/datasets/intel-scenes --profile cpu --out bench-out

Runs `dvc exp run` with the profile's parameters (bench/profiles/<profile>.yaml, a partial
params.yaml) in a temporary git copy of the project, so the workspace is untouched. Writes
to OUT a Markdown table (results.md: test accuracy, macro F1, training time, training
images per second, peak memory, the machine, the project's commit, which submission the profile
submits), the run's params.yaml, and one submission per model and one of their ensemble; OUT
is replaced as a whole when the run has finished (a failed or interrupted run leaves it as it
was; the next run removes the temporary folders of one that was killed). A folder with no
predict/ gets one made of its test images, so each submission can be scored. Every argument
is checked before anything is copied or trained.
With --original, the original notebook's network and settings add a row of their own;
--set KEY=VALUE overrides the profile (a smoke run: --set train.epochs=1 ...). With
--without-dvc (a machine without DVC, such as a lent GPU machine) the copy is plain files and
the stages run by their commands in dvc.yaml (bench/without_dvc.py), export left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/run.py`

from bench import without_dvc
from bench.machine import describe, run_measured
from bench.workspace import (
    PROFILES,
    check_data,
    checked_profile,
    copy_project,
    git_state,
    load_profile,
    require_dvc,
    tool_parser,
    write_params,
)
from imgclf.atomic import write_text
from imgclf.config import read_yaml
from imgclf.errors import UserError, exit_on_user_error
from imgclf.submission import DEFAULT_LABELS_FILE
from imgclf.termination import Terminated, exit_on_sigterm


@exit_on_user_error
def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "--data", type=Path, required=True, help="train/<class>/, optional val/, test/, predict/"
    )
    parser.add_argument(
        "--profile",
        required=True,
        help=f"{', '.join(sorted(p.stem for p in PROFILES.glob('*.yaml')))}, or a YAML file",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="the results' folder (replaced if it exists)"
    )
    parser.add_argument("--original", action="store_true", help="add the original's row")
    parser.add_argument(
        "--work", type=Path, help="keep the run here, a new folder (default: a temp folder)"
    )
    parser.add_argument(
        "--without-dvc", action="store_true", help="run the stages by their commands, no DVC"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override the profile"
    )
    args = parser.parse_args()
    exit_on_sigterm()

    profile = checked_profile(args.profile, args.set)
    check_data(args.data, profile)
    check_out(args.out)
    if args.work and args.work.exists() and (not args.work.is_dir() or any(args.work.iterdir())):
        raise UserError(
            f"--work {args.work} exists: give a new folder, or remove that one (it holds an "
            "earlier run, whose project/ the other benchmarks can still read)"
        )
    if not args.without_dvc:
        require_dvc()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    for folder, prefix in temporary_places(args.out).values():
        remove_abandoned(folder, prefix)
    staging = run_folder("partial", args.out)
    work = args.work or run_folder("work", args.out)
    try:
        report = benchmark(args, profile, work, staging)
        replace_folder(args.out, staging)
    except (KeyboardInterrupt, Terminated) as stop:
        print(f"interrupted: {args.out} is as it was before the run", file=sys.stderr)
        sys.exit(stop.code if isinstance(stop, Terminated) else 130)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(report)


def check_out(out: Path) -> None:
    """--out must be a folder, or not exist yet; its parent must be creatable."""
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise UserError(f"--out {out}: {folder} is a file; give a folder for the results")


def temporary_places(out: Path) -> dict[str, tuple[Path, str]]:
    """Where a run into `out` keeps each of its temporary folders, and how their names begin:
    the results in the making, the project and its data (without --work), and the earlier
    results while they are replaced. The run's process id follows, then a random part."""
    return {
        "partial": (out.parent, f".{out.name}-partial-"),
        "work": (Path(tempfile.gettempdir()), "imgclf-bench-"),
        "old": (out.parent, f".{out.name}-old-"),
    }


def run_folder(kind: str, out: Path) -> Path:
    """A new temporary folder of this run, of a kind in temporary_places."""
    folder, prefix = temporary_places(out)[kind]
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=folder))


def remove_abandoned(folder: Path, prefix: str) -> None:
    """Remove the folders `prefix`PID-* in `folder` whose run is gone: a run killed with
    SIGKILL (or by a power cut) could not remove its own, and its project copy is large."""
    for leftover in folder.glob(f"{prefix}*"):
        pid = leftover.name.removeprefix(prefix).partition("-")[0]
        if pid.isdigit() and not may_have_written(int(pid), leftover.stat().st_mtime):
            shutil.rmtree(leftover, ignore_errors=True)
            print(f"removed {leftover}, left by a run that was killed", file=sys.stderr)


# How much later than a folder's last change its writer's start may seem, the clock having
# been set back in between, before a process with that id counts as another one.
CLOCK_SLACK_S = 60


def may_have_written(pid: int, written: float) -> bool:
    """Whether process `pid` is running and may be the one that wrote a folder at `written`
    (a time.time()): not if it started later, having got the id of one that exited."""
    try:
        return psutil.Process(pid).create_time() <= written + CLOCK_SLACK_S
    except psutil.NoSuchProcess:
        return False


def replace_folder(out: Path, new: Path) -> None:
    """Make `new` (a folder beside `out`) `out`, the earlier `out` removed: `out` is never a
    mix of two runs (for the moment between the two renames it is absent)."""
    if out.exists():
        old = run_folder("old", out)
        out.rename(old / out.name)
        new.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(out)


def benchmark(args: argparse.Namespace, profile: dict, work: Path, out: Path) -> str:
    """Run the benchmark in `work`, writing its files into `out`; the report."""
    data = data_view(args.data.resolve(), work / "data")
    copied = git_state()  # the code as it is copied: the checkout may change while the run goes on
    project = copy_project(work / "project", {"data.root": str(data)}, not args.without_dvc)
    pipeline = Pipeline(project, args.without_dvc)

    started = time.perf_counter()
    seconds, peak = pipeline.run(args.profile, profile)
    for kept in (out / "params.yaml", work / PROFILE_PARAMS):  # before the reruns change it
        shutil.copyfile(project / "params.yaml", kept)
    rows = [model_row(project, name) for name in ("scratch", "transfer")]
    rows.append(ensemble_row(project))
    chosen = write_submissions(pipeline, profile, out)
    pipeline_seconds = time.perf_counter() - started
    if args.original:
        rows.append(original_row(pipeline, profile))

    asked = read_yaml(out / "params.yaml")["submission"]["model"]
    report = (
        f"# Benchmark: profile `{args.profile}` on `{args.data}`\n\n"
        f"Machine: {describe()}\n\n"
        f"Project: {copied}; its parameters as the run used them are in `params.yaml`"
        " beside this file (data.root: the run's own view of the data)\n\n"
        f"Whole pipeline ({timed_stages(args.without_dvc)}): {duration(seconds)},"
        f" peak memory of all its processes {peak / 1024:.2f} GiB"
        f" ({duration(pipeline_seconds)} with the other two submissions)\n\n"
        f"{results_table(rows)}\n"
        f"Submitted (submission.model: {asked}): the {chosen} model's,"
        f" `submission-{chosen}.csv`; the other two are for comparison\n\n"
        f"Command: `python bench/run.py {' '.join(sys.argv[1:])}`\n"
    )
    (out / "results.md").write_text(report)
    return report


def duration(seconds: float) -> str:
    """Seconds below a minute (to a tenth below ten), else minutes to a tenth."""
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 59.5 else f"{seconds / 60:.1f} min"


def timed_stages(without_dvc: bool) -> str:
    """What the pipeline's time covers: `dvc exp run` runs every stage, the export too."""
    return "prepare to submission" if without_dvc else "prepare to submission and the export"


def data_view(data: Path, view: Path) -> Path:
    """`data` itself if it has a predict/ folder; else a folder of links whose predict/ holds
    the test images under their own names, with their labels in predict_labels.csv."""
    if (data / "predict").is_dir():
        return data
    view.mkdir(parents=True)
    for name in ("train", "val", "test"):
        if (data / name).is_dir():
            (view / name).symlink_to(data / name)
    (view / "predict").mkdir()
    with open(view / DEFAULT_LABELS_FILE, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "label"])
        for image in sorted((data / "test").glob("*/*")):
            link = view / "predict" / image.name
            if link.exists():
                raise SystemExit(f"two test images are named {image.name}: ids must be unique")
            link.symlink_to(image)
            writer.writerow([image.stem, image.parent.name])
    return view


REPORTED = ("evaluate", "make_submission")  # the stages the report reads
# The profile run's params.yaml, kept beside the project: the start of bench/seeds.py's runs.
PROFILE_PARAMS = "profile-params.yaml"


class Pipeline:
    """A copy of the project whose stages run with `dvc exp run`, or without DVC. Every run
    starts from the same parameters, `start` (a params.yaml; by default the project's as the
    pipeline finds it), with its own settings over them: `dvc exp run -S` leaves its settings
    in the workspace, and one run's settings must not stay in force in the runs after it."""

    def __init__(self, project: Path, without_dvc: bool, start: Path | None = None) -> None:
        self.project = project
        self.without_dvc = without_dvc
        self.start = (start or project / "params.yaml").read_text()

    def run(self, name: str, params: dict) -> tuple[float, float]:
        """The whole pipeline with `params` set, as experiment `name` (without DVC, the stages
        the report reads and those they need: no export): wall seconds and peak memory (MiB)."""
        if not self.without_dvc:
            return self._exp_run(name, params)
        return self._run_stages(params, without_dvc.stages_for(self.project, REPORTED))

    def rerun(self, name: str, params: dict, stage: str, upstream: bool = False) -> None:
        """`stage` again with `params` set. DVC reruns the stages before it whose parameters
        changed; without it, `upstream` runs them all again (else they must be up to date)."""
        if not self.without_dvc:
            self._exp_run(name, params, (stage,))
        elif upstream:
            self._run_stages(params, without_dvc.stages_for(self.project, (stage,)))
        else:
            self._run_stages(params, [stage])

    def _exp_run(
        self, name: str, params: dict, targets: tuple[str, ...] = ()
    ) -> tuple[float, float]:
        self._restore_start()
        return run_measured(exp_run(name, params, targets), self.project)

    def _run_stages(self, params: dict, stages: list[str]) -> tuple[float, float]:
        params_file = self._restore_start()
        write_params(params_file, params_file, params)
        script = Path(without_dvc.__file__).resolve()
        return run_measured([sys.executable, str(script), *stages], self.project)

    def _restore_start(self) -> Path:
        params_file = self.project / "params.yaml"
        write_text(params_file, self.start)
        return params_file


def exp_run(name: str, params: dict, targets: tuple[str, ...] = ()) -> list[str]:
    settings = [arg for key, value in params.items() for arg in ("-S", f"{key}={_yaml(value)}")]
    return ["dvc", "exp", "run", "-n", Path(name).stem, *settings, *targets]


def _yaml(value: object) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def metrics(project: Path, name: str) -> dict:
    return json.loads((project / "metrics" / f"{name}.json").read_text())


def model_row(project: Path, name: str) -> dict:
    from imgclf import checkpoint, paths

    tested = metrics(project, "evaluate")[name]
    built = checkpoint.load(project / paths.checkpoint(name))["architecture"]
    return {
        "model": f"{name} ({built['arch']}, {built['image_size']} px)",
        "test accuracy": f"{tested['test_acc']:.2%}",
        "macro F1": f"{tested['test_f1']:.4f}",
        **training_columns(project, name),
    }


def ensemble_row(project: Path) -> dict:
    tested = metrics(project, "evaluate")["ensemble"]
    weights = metrics(project, "provenance/evaluate")["ensemble"]["weights"]
    shares = ", ".join(f"{name} {weight:.2f}" for name, weight in weights.items())
    return {
        "model": f"ensemble: both models' probabilities weighted {shares}",
        "test accuracy": f"{tested['test_acc']:.2%}",
        "macro F1": f"{tested['test_f1']:.4f}",
    }


def training_columns(project: Path, name: str) -> dict:
    trained = metrics(project, f"train_{name}")[name]
    timing = metrics(project, f"timing/train_{name}")[name]
    return {
        "epoch kept": f"{trained['kept_epoch']} of {trained['epochs_trained']}",
        "training time": duration(timing["train_s"]),
        "training images/s": f"{timing['images_per_s']:.0f}",
        "peak memory": f"{timing['peak_rss_mb'] / 1024:.2f} GiB",
    }


def write_submissions(pipeline: Pipeline, profile: dict, out: Path) -> str:
    """submission-<model>.csv for both models and their ensemble, the chosen one first, each
    with the `profile` the pipeline ran: the chosen one's name."""
    project = pipeline.project
    chosen = metrics(project, "submission")["submission"]["model"]
    shutil.copyfile(project / "data/submission.csv", out / f"submission-{chosen}.csv")
    for other in {"scratch", "transfer", "ensemble"} - {chosen}:
        pipeline.rerun(f"submit-{other}", profile | {"submission.model": other}, "make_submission")
        shutil.copyfile(project / "data/submission.csv", out / f"submission-{other}.csv")
    return chosen


# How the machine runs a training: the profile's, for the original's row too.
RUNTIME_KEYS = {
    "train.device",
    "train.cpu_threads",
    "train.nproc",
    "train.num_workers",
    "train.data_on_device",
    "train.deterministic",
    "train.precision",
    "train.compile",
    "scratch.precision",
}


def original_settings(profile: dict) -> dict:
    """The notebook's settings (bench/profiles/original.yaml) over params.yaml's defaults: of
    the profile, only the data, the split, the runtime and the other stages' keys stay (not its
    training, augmentation or scratch keys: its recipe)."""
    kept = {
        key: value
        for key, value in profile.items()
        if key.split(".")[0] not in ("train", "augment", "scratch") or key in RUNTIME_KEYS
    }
    return kept | load_profile("original")


def original_row(pipeline: Pipeline, profile: dict) -> dict:
    """The notebook's network and settings, trained by the train_scratch stage and scored
    by the evaluate stage's code on the test split."""
    from imgclf import paths
    from imgclf.cache import ImageCache
    from imgclf.evaluate import load_trained, predict
    from imgclf.samples import load_split_data
    from imgclf.scores import score

    project = pipeline.project
    pipeline.rerun("original", original_settings(profile), "train_scratch", upstream=True)
    data = load_split_data(project / paths.MANIFEST, project / paths.SPLIT)
    trained = load_trained(project / paths.checkpoint("scratch"))
    logits = predict(trained, ImageCache(project / paths.CACHE), data.indices("test"), 256, False)
    scores = score(logits, data.targets("test"), data.classes).metrics
    batch_size = read_yaml(project / "params.yaml")["train"]["batch_size"]
    return {
        "model": f"original notebook CNN ({trained.model.input_size} px, batch {batch_size})",
        "test accuracy": f"{scores['acc']:.2%}",
        "macro F1": f"{scores['f1']:.4f}",
        **training_columns(project, "scratch"),
    }


def results_table(rows: list[dict]) -> str:
    columns = ["model", "test accuracy", "macro F1", "epoch kept", "training time",
               "training images/s", "peak memory"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
