"""A Markdown report for a code review: what the workspace changed against a git revision.

    python -m imgclf.review --rev main --out review

writes review/report.md (`dvc params diff` and `dvc metrics diff` as tables, and every picture
that changed, the revision's beside the workspace's) and review/plots/index.html (`dvc plots
diff`: all plots of both, side by side). Run it from the project's root after `dvc repro`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

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
