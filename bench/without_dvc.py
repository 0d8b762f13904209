"""The pipeline's stages run by their commands in dvc.yaml, without DVC: for a machine that
has none (the lent GPU machines have torch but no DVC, and no network to install it).

    python bench/without_dvc.py STAGE ...

Run from a project's root, runs the named stages in dvc.yaml's order, each whether or not its
inputs changed (with no DVC there is no lock file to tell), and stops at the first that fails.
`stages_for` finds the stages a target needs.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/without_dvc.py`

from bench.workspace import tool_parser
from imgclf.config import read_yaml


def stages_for(project: Path, targets: tuple[str, ...]) -> list[str]:
    """`targets` and every stage whose outputs they read, directly or not, in dvc.yaml's order."""
    stages = read_yaml(project / "dvc.yaml")["stages"]
    needed = set(targets)
    while True:
        read = {dep for name in needed for dep in paths_of(stages[name], ("deps",))}
        writers = {
            name
            for name, stage in stages.items()
            if any(within(dep, out) for dep in read for out in paths_of(stage, OUTPUTS))
        }
        if writers <= needed:
            return [name for name in stages if name in needed]
        needed |= writers


OUTPUTS = ("outs", "metrics", "plots")


def paths_of(stage: dict[str, Any], sections: tuple[str, ...]) -> list[str]:
    """The paths in a stage's `sections`; an entry with options is a one-key mapping."""
    entries = [entry for section in sections for entry in stage.get(section, [])]
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries]


def within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def run(project: Path, names: list[str]) -> None:
    """Run the stages `names` in dvc.yaml's order in `project`, stopping at a failure. The
    commands' `python` is this interpreter (the machine may only have `python3`)."""
    stages = read_yaml(project / "dvc.yaml")["stages"]
    unknown = sorted(set(names) - set(stages))
    if unknown:
        raise SystemExit(f"dvc.yaml has no stage {', '.join(unknown)}: it has {', '.join(stages)}")
    for name in (name for name in stages if name in names):
        command = shlex.split(stages[name]["cmd"])
        if command[0] == "python":
            command[0] = sys.executable
        print(f"Running stage '{name}':\n> {stages[name]['cmd']}", flush=True)
        code = subprocess.run(command, cwd=project).returncode
        if code:
            raise SystemExit(
                f"stage '{name}' failed (exit code {code}); those after it did not run"
            )


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        "stages", nargs="+", metavar="STAGE", help="a stage of dvc.yaml (run in its order)"
    )
    run(Path.cwd(), parser.parse_args().stages)


if __name__ == "__main__":
    main()
