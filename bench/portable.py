"""What the same bits on any machine cost: each training stage on the demo data with
train.deterministic true (portable CPU code paths, train.cpu_threads threads) and false (the
machine's own), alternating, in the same run; the median of the repeats.

    python bench/portable.py --repeats 3
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/portable.py`

from bench.machine import describe, run_data_stages, run_training_stage
from bench.workspace import copy_project, tool_parser, write_params
from imgclf import paths


def train(project: Path, model: str, deterministic: bool) -> tuple[float, float]:
    """Stage wall seconds and training images per second of one run."""
    params = project / "params.yaml"
    write_params(params, params, {"train.deterministic": deterministic})
    seconds, timing = run_training_stage(project, model)
    return seconds, timing["images_per_s"]


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="alternating runs of each model and setting (default: %(default)s)",
    )
    args = parser.parse_args()
    lines = [
        "| model | train.deterministic | stage wall s | training images/s | relative speed |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        project = copy_project(Path(folder) / "project", {})
        run_data_stages(project)
        for model in paths.MODEL_NAMES:
            runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for _ in range(args.repeats):
                for deterministic in (False, True):
                    runs[deterministic].append(train(project, model, deterministic))
            fast = statistics.median(rate for _, rate in runs[False])
            for deterministic, results in runs.items():
                rate = statistics.median(r for _, r in results)
                lines.append(
                    f"| {model} | {str(deterministic).lower()} | "
                    f"{statistics.median(s for s, _ in results):.1f} | {rate:.0f} | "
                    f"{rate / fast:.2f} |"
                )
    print(
        f"data/demo, params.yaml as committed, median of {args.repeats} alternating runs "
        f"({describe()}):\n\n" + "\n".join(lines)
    )


if __name__ == "__main__":
    main()
