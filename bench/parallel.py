"""Data-parallel training against one process: each training stage on the demo data with
train.nproc 1, then N (torchrun; gloo on the CPU, NCCL on GPUs), its wall time, training
images per second and validation accuracy, measured in the same run.

    python bench/parallel.py --nproc 2
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/parallel.py`

from bench.machine import describe, run_data_stages, run_training_stage
from bench.workspace import copy_project, tool_parser, write_params
from imgclf import paths


def train(project: Path, model: str, nproc: int) -> tuple[float, dict]:
    write_params(project / "params.yaml", project / "params.yaml", {"train.nproc": nproc})
    seconds, timing = run_training_stage(project, model)
    metrics = json.loads((project / f"metrics/train_{model}.json").read_text())[model]
    return seconds, metrics | timing


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "--nproc",
        type=int,
        default=2,
        help="the processes of the parallel run, against 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, default=4, help="training epochs of each run (default: %(default)s)"
    )
    args = parser.parse_args()
    lines = [
        "| model | processes | stage wall s | training images/s | val accuracy | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        project = copy_project(Path(folder) / "project", {"train.epochs": args.epochs})
        run_data_stages(project)
        for model in paths.MODEL_NAMES:
            runs = {nproc: train(project, model, nproc) for nproc in (1, args.nproc)}
            alone_s = runs[1][0]
            for nproc, (seconds, metrics) in runs.items():
                lines.append(
                    f"| {model} | {nproc} | {seconds:.1f} | {metrics['images_per_s']}"
                    f" | {metrics['val_acc']:.4f} | {alone_s / seconds:.2f}x |"
                )
    print(
        f"data/demo, {args.epochs} epochs, params.yaml otherwise ({describe()}):\n\n"
        + "\n".join(lines)
    )


if __name__ == "__main__":
    main()
