"""The shipped model against PyTorch, and classify's speed against evaluate's, in one run.

What it costs: it first runs the whole pipeline, `dvc repro` (both models trained, evaluated,
submitted and exported), with params.yaml and any --set changes, on params.yaml's data.root,
in a temporary copy of the project: 1 to 2 minutes on the demo on two CPU cores (as long as
training takes on other data or settings), then the measuring, which grows with --images.
Your workspace is left alone.

Then it measures on the submitted model:
- the export's agreement with PyTorch on the test images and its largest probability difference;
- whether `python -m imgclf.classify` on data.root's predict/ (data/demo/predict) gives the
  submission's labels;
- images per second of evaluate's prediction (the cache, already decoded) and of classify
  (files read and decoded, the command's start included), on the same N images (the predict
  images copied into a folder N times over), with the .onnx and the .pt;
- classify's peak memory on N / 10 and N images, to see that it does not grow with N.

    python bench/classify.py [--images 10000] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/classify.py`

from bench.machine import describe, run_measured
from bench.workspace import check_params, copy_project, settings_with_known_keys, tool_parser
from imgclf.config import load_params
from imgclf.errors import UserError, exit_on_user_error
from imgclf.runtime import pin_cpu_arithmetic


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def labels(path: Path, id_column: str, label_column: str) -> dict[str, str]:
    with open(path, newline="") as file:
        return {Path(row[id_column]).stem: row[label_column] for row in csv.DictReader(file)}


def image_folder(source: Path, target: Path, count: int) -> list[Path]:
    """`count` copies of the images in `source`, cycling through them in name order; the
    originals in the order of the copies."""
    originals = sorted(source.iterdir())
    target.mkdir(parents=True)
    order = []
    for i in range(count):
        original = originals[i % len(originals)]
        shutil.copyfile(original, target / f"{i:06d}{original.suffix}")
        order.append(original)
    return order


def classify(project: Path, model: str, folder: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak memory (MiB) of the classify command."""
    command = [sys.executable, "-m", "imgclf.classify", model, str(folder), "--out", str(out)]
    return run_measured(command, project)


def evaluate_images_per_second(project: Path, model: str, originals: list[Path]) -> float:
    """evaluate's prediction (imgclf.evaluate.predict: cache rows, evaluate.batch_size) over
    the cache rows of `originals`, timed after one warm-up pass."""
    from imgclf.cache import ImageCache
    from imgclf.evaluate import load_trained, predict
    from imgclf.samples import read_manifest

    params = load_params(project / "params.yaml")
    rows = {
        Path(s.path).name: s.index
        for s in read_manifest(project / "data/prepared/manifest.csv")
        if s.source == "predict"
    }
    indices = [rows[original.name] for original in originals]
    trained = load_trained(project / "models" / f"{model}.pt")
    cache = ImageCache(project / "data/prepared/images.npy")
    batch = params.evaluate.batch_size
    predict(trained, cache, indices[:batch], batch, tta_flip=False)
    started = time.perf_counter()
    predict(trained, cache, indices, batch, tta_flip=False)
    return len(indices) / (time.perf_counter() - started)


def data_and_params(root: str, settings: list[str]) -> str:
    """The report's opening: the data the run read (data.root, as --set may have changed it)
    and the parameters."""
    changed = f" with {', '.join(settings)}" if settings else ""
    return f"{root}, params.yaml{changed}"


@exit_on_user_error
def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "--images",
        type=int,
        default=10_000,
        metavar="N",
        help="classify's speed on N images, its memory on N / 10 and N (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change params.yaml for this run (the copy's, not yours)",
    )
    args = parser.parse_args()
    if args.images < 10:
        raise UserError(
            f"--images {args.images}: give 10 or more (classify's memory is measured on N / 10)"
        )
    changes = settings_with_known_keys(args.set)
    check_params(changes, "--set")
    with tempfile.TemporaryDirectory() as folder:
        project = copy_project(Path(folder) / "project", changes)
        params = load_params(project / "params.yaml")
        if params.submission.model == "ensemble":
            parser.error(
                "submission.model: ensemble has no checkpoint to measure the export against "
                "(evaluate builds it from both); measure scratch or transfer"
            )
        pin_cpu_arithmetic(params.train)  # evaluate's arithmetic, measured here, as in its stage
        repro_s, _ = run_measured(["dvc", "repro"], project)
        exported = read_json(project / "metrics/export.json")["export"]
        exact = read_json(project / "metrics/timing/export.json")["export"]["max_prob_diff"]
        model = exported["model"]
        onnx, pt = f"models/export/{model}.onnx", f"models/{model}.pt"

        predict_dir = project / params.data.root / params.data.predict_dir
        preds = Path(folder) / "predict.csv"
        classify(project, onnx, predict_dir, preds)
        got = labels(preds, "file", "class_1")
        options = params.submission
        expected = labels(project / "data/submission.csv", options.id_column, options.label_column)
        same = sum(got.get(ident) == label for ident, label in expected.items())

        originals = image_folder(predict_dir, Path(folder) / "many", args.images)
        small = Path(folder) / "few"
        small.mkdir()
        for path in sorted((Path(folder) / "many").iterdir())[: args.images // 10]:
            shutil.copyfile(path, small / path.name)
        evaluate_rate = evaluate_images_per_second(project, model, originals)
        runs = {
            (name, count): classify(project, path, where, Path(folder) / "out.csv")
            for name, path in (("onnx", onnx), ("pt", pt))
            for count, where in ((args.images, Path(folder) / "many"), (args.images // 10, small))
        }
    n = args.images
    lines = [
        f"{data_and_params(params.data.root, args.set)}; {describe()}; `dvc repro` {repro_s:.0f} s",
        "",
        f"- submitted model: {model}; the export agrees with PyTorch on "
        f"{exported['agreement']:.2%} of {exported['test_images']} test images, largest "
        f"probability difference {exact:.3g} (metrics: to "
        f"{exported['prob_agreement_decimals']} decimals)",
        f"- classify {onnx} on {params.data.predict_dir}/: {same} of {len(expected)} labels "
        "as in the submission",
        "",
        f"| on {n} images (the {len(set(originals))} predict images, repeated) | images/s "
        f"| peak memory, {n // 10} images | peak memory, {n} images |",
        "|---|---|---|---|",
        f"| evaluate's prediction ({pt}, decoded cache) | {evaluate_rate:.0f} | | |",
    ]
    for name, path in (("onnx", onnx), ("pt", pt)):
        seconds, peak = runs[(name, n)]
        _, small_peak = runs[(name, n // 10)]
        lines.append(
            f"| classify {path} (files decoded, start included) | {n / seconds:.0f} "
            f"| {small_peak:.0f} MiB | {peak:.0f} MiB |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
