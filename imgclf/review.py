"""A Markdown report for a code review: what the workspace changed against a git revision.

    python -m imgclf.review --rev main --out review

writes review/report.md (`dvc params diff` and `dvc metrics diff` as tables; for each model,
whether its weights changed and whether its change in test accuracy is beyond noise; the test
images whose predicted class changed; and every picture that changed, the revision's beside the
workspace's) and review/plots/index.html (`dvc plots diff`: all plots of both, side by side).
Run it from the project's root after `dvc repro`: it refuses outputs older than the workspace's
code and parameters.
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
from imgclf.paths import MODEL_NAMES

WORKSPACE = "workspace"
PREDICTIONS_LISTED = 30  # rows of the report; the CSV has them all


def dvc(*args: str) -> str:
    """Run the dvc of this Python environment; its stdout, or an error with its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout


def git_show(rev: str, path: Path) -> str | None:
    """The file at `path` in git revision `rev`, or None where it has none."""
    shown = subprocess.run(
        ["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True, check=False
    )
    return shown.stdout if shown.returncode == 0 else None


def check_revision(rev: str) -> None:
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if known.returncode != 0:
        raise SystemExit(
            f"review: {rev!r} is not a git revision here: name a branch, tag or commit "
            "(make review REV=main)"
        )


def stale_stages() -> list[str]:
    """'stage: dependency' for each dependency that changed since dvc.lock recorded it: code
    or parameters edited without `dvc repro`, so the outputs are not of them. Outputs that are
    missing (a clean clone: DVC's cache is not in git) are not stale."""
    status = json.loads(dvc("status", "--json"))
    return [
        f"{stage}: {changed}"
        for stage, entries in status.items()
        for entry in entries
        if isinstance(entry, dict)  # "always changed" is a string
        for changed in changed_deps(entry.get("changed deps", {}))
    ]


def changed_deps(deps: dict) -> list[str]:
    """The files and parameters in `dvc status`'s changed deps that are there but differ."""
    found = []
    for name, status in deps.items():
        if isinstance(status, dict):  # a params file: each parameter's status
            found += [f"{name}:{key}" for key, value in status.items() if value != "deleted"]
        elif status != "deleted":
            found.append(name)
    return found


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
    shown = git_show(rev, paths.TEST_PREDICTIONS)
    if shown is None:
        return f"`{rev}` has no {paths.TEST_PREDICTIONS}: no per-image comparison is possible."
    if not paths.TEST_PREDICTIONS.exists():
        return f"The workspace has no {paths.TEST_PREDICTIONS}: run `dvc repro` first."
    before, now = read_predictions(shown), read_predictions(paths.TEST_PREDICTIONS.read_text())
    paired = pair(before, now)
    if not paired:
        return f"The test images differ between `{rev}` and the workspace: they cannot be paired."
    lines = [
        weights_line(rev),
        "",
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
    return "\n".join([*lines, "", *prediction_changes(rev, before, now)])


def weights_line(rev: str) -> str:
    """Whether each model's weights changed, by the SHA-256 its training stage recorded."""
    said = []
    for model in MODEL_NAMES:
        path = paths.provenance(paths.training_stage(model))
        then = git_show(rev, path)
        if then is None or not path.exists():
            said.append(f"{model} not recorded on both sides")
            continue
        digests = [json.loads(text)[model]["weights_sha256"] for text in (then, path.read_text())]
        said.append(f"{model} {'the same' if digests[0] == digests[1] else 'changed'}")
    return f"Weights (their SHA-256 in `metrics/provenance/`): {', '.join(said)}."


def prediction_changes(
    rev: str, before: dict[str, dict[str, str]], now: dict[str, dict[str, str]]
) -> list[str]:
    """The test images whose predicted class changed, model by model (a wrong answer that
    became another wrong one too), the first PREDICTIONS_LISTED of them."""
    changes = [
        (model, path, row["label"], before[path][model], row[model])
        for model in next(iter(now.values()), {})
        if model != "label"
        for path, row in now.items()
        if model in before[path] and before[path][model] != row[model]
    ]
    if not changes:
        return ["No test image's predicted class changed."]
    lines = [
        f"Test images whose predicted class changed: {len(changes)}"
        + (f", the first {PREDICTIONS_LISTED}" if len(changes) > PREDICTIONS_LISTED else "")
        + f" (all in `{paths.TEST_PREDICTIONS}`).",
        "",
        f"| model | image | label | at `{rev}` | now |",
        "|---|---|---|---|---|",
    ]
    for model, path, label, then, now_ in changes[:PREDICTIONS_LISTED]:
        lines.append(f"| {model} | `{path}` | {label} | {then} | {now_} |")
    return lines


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
    check_revision(args.rev)
    if stale := stale_stages():
        raise SystemExit(
            "review: the outputs are not of the workspace's code and parameters (changed since "
            f"dvc.lock: {'; '.join(stale)}): run `dvc repro` first"
        )
    path = args.out / "report.md"
    write_text(path, report(args.rev, args.out))
    print(f"review: {path}, {args.out / 'plots' / 'index.html'}")


if __name__ == "__main__":
    main()
