"""A Markdown report for a code review: what the workspace changed against a git revision.

    python -m imgclf.review --rev main --out review

writes review/report.md (`dvc params diff` and `dvc metrics diff` as tables; for each model,
whether its change in test accuracy is beyond noise; and every picture that changed, the
revision's beside the workspace's) and review/plots/index.html (`dvc plots diff`: all plots of
both, side by side). Run it from the project's root after `dvc repro`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import binomtest

from imgclf import paths
from imgclf.atomic import write_text

WORKSPACE = "workspace"


def dvc(*args: str) -> str:
    """Run the dvc of this Python environment; its stdout, or an error with its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout


def table(markdown: str) -> str:
    """A table from `dvc ... diff --md`, or "" where it has no rows (dvc prints the header)."""
    return markdown.strip() if len(markdown.strip().splitlines()) > 2 else ""


def changed_images(rev: str, plots_dir: Path) -> list[tuple[str, str, str]]:
    """(plot, the revision's image, the workspace's image) for each image plot that differs,
    paths relative to the report; a picture missing on one side has an empty path."""
    static = (plots_dir / "static").resolve()
    shown = json.loads(dvc("plots", "diff", rev, "--json", "-o", str(static)))["data"]
    changed = []
    for name, entries in shown.items():
        images = {
            revision: Path(entry["url"])
            for entry in entries
            if entry.get("type") == "image"
            for revision in entry["revisions"]
        }
        if not images:
            continue
        new = images.pop(WORKSPACE, None)
        old = next(iter(images.values()), None)  # the one other revision
        if old and new and old.read_bytes() == new.read_bytes():
            continue
        changed.append(
            (name, *(os.path.relpath(p, plots_dir.parent) if p else "" for p in (old, new)))
        )
    return changed


@dataclass(frozen=True)
class Paired:
    """One model's test predictions at the base revision and in the workspace, image by image."""

    model: str
    images: int
    right_before: int
    right_now: int
    only_before: int  # images right at the base revision and wrong now
    only_now: int  # wrong at the base revision and right now

    @property
    def p_value(self) -> float:
        """McNemar's exact test: how likely so lopsided a split of the images that changed,
        were either side as likely to win each one (a two-sided binomial test)."""
        changed = self.only_before + self.only_now
        return float(binomtest(self.only_now, changed).pvalue) if changed else 1.0

    @property
    def beyond_noise(self) -> bool:
        return self.p_value < SIGNIFICANCE


SIGNIFICANCE = 0.05


def read_predictions(text: str) -> dict[str, dict[str, str]]:
    """metrics/test_predictions.csv: image path -> {"label": ..., <model>: predicted class}."""
    return {row.pop("path"): row for row in csv.DictReader(io.StringIO(text))}


def pair(before: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> list[Paired]:
    """Each model's predictions on the same test images; empty when the images differ."""
    if {p: r["label"] for p, r in before.items()} != {p: r["label"] for p, r in now.items()}:
        return []
    models = [m for m in next(iter(now.values()), {}) if m != "label"]
    paired = []
    for model in models:
        if any(model not in row for row in before.values()):
            continue
        right = [
            (before[p][model] == row["label"], row[model] == row["label"]) for p, row in now.items()
        ]
        paired.append(
            Paired(
                model,
                images=len(right),
                right_before=sum(b for b, _ in right),
                right_now=sum(n for _, n in right),
                only_before=sum(b and not n for b, n in right),
                only_now=sum(n and not b for b, n in right),
            )
        )
    return paired


def signal_or_noise(rev: str) -> str:
    """For each model, in words: did the test accuracy move beyond what chance explains?"""
    shown = subprocess.run(
        ["git", "show", f"{rev}:{paths.TEST_PREDICTIONS.as_posix()}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        return f"`{rev}` has no {paths.TEST_PREDICTIONS}: no per-image comparison is possible."
    if not paths.TEST_PREDICTIONS.exists():
        return f"The workspace has no {paths.TEST_PREDICTIONS}: run `dvc repro` first."
    paired = pair(
        read_predictions(shown.stdout), read_predictions(paths.TEST_PREDICTIONS.read_text())
    )
    if not paired:
        return f"The test images differ between `{rev}` and the workspace: they cannot be paired."
    lines = [
        f"Each model's predictions at `{rev}` and now, on the same {paired[0].images} test "
        f"images; McNemar's exact test on the images whose verdict changed (p < {SIGNIFICANCE}: "
        "beyond noise).",
        "",
        f"| model | right at `{rev}` | right now | right only at `{rev}` | right only now | p "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in paired:
        if result.only_before == result.only_now == 0:
            verdict = "the same images right and wrong"
        elif result.beyond_noise:
            verdict = (
                f"**beyond noise**: {'better' if result.only_now > result.only_before else 'worse'}"
            )
        else:
            verdict = "within noise"
        lines.append(
            f"| {result.model} | {result.right_before} | {result.right_now} | {result.only_before} "
            f"| {result.only_now} | {result.p_value:.3g} | {verdict} |"
        )
    return "\n".join(lines)


def report(rev: str, out: Path) -> str:
    plots_dir = out / "plots"
    dvc("plots", "diff", rev, "-o", str(plots_dir))
    params = table(dvc("params", "diff", rev, "--md"))
    metrics = table(dvc("metrics", "diff", rev, "--md"))
    pictures = changed_images(rev, plots_dir)
    lines = [
        f"# What this change did: the workspace against `{rev}`",
        "",
        "## Parameters",
        "",
        params or "No parameter changed.",
        "",
        "## Metrics",
        "",
        metrics or "No metric changed.",
        "",
        "## Signal or noise",
        "",
        signal_or_noise(rev),
        "",
        "## Plots",
        "",
        f"Every plot of both, side by side: [plots/index.html](plots/index.html)"
        f" (`dvc plots diff {rev}`).",
        "",
    ]
    if pictures:
        lines += [f"| picture | `{rev}` | workspace |", "|---|---|---|"]
        for name, old, new in pictures:
            cells = [
                f"![{name}, {side}]({path})" if path else "(none)"
                for side, path in ((rev, old), (WORKSPACE, new))
            ]
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    else:
        lines.append("No picture changed.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="git revision to compare with (HEAD)")
    parser.add_argument("--out", type=Path, default=Path("review"), help="folder (review)")
    args = parser.parse_args()
    path = args.out / "report.md"
    write_text(path, report(args.rev, args.out))
    print(f"review: {path}, {args.out / 'plots' / 'index.html'}")


if __name__ == "__main__":
    main()
