"""DVC's own time per command with ruamel.yaml's C parser (libyaml, `ruamel.yaml.clib`) and
without it, alternating (each first in every other round), the median of the repeats. DVC
parses dvc.lock, dvc.yaml and params.yaml many times in each command, in pure Python where the
C parser is missing.

    python bench/dvc_yaml.py --project WORK/project --repeats 4 --out FILE
    python bench/dvc_yaml.py --project WORK/project --command "status" \\
        --command "exp run -S submission.model=transfer make_submission" --out FILE

WORK is a `bench/run.py --work WORK` folder, or any DVC project after a `dvc repro`. "Without"
runs each `dvc` process with ruamel.yaml's libyaml module hidden, as where it is not installed.
A command that changes the project (`dvc exp run`) leaves it as its last run did.
"""

from __future__ import annotations

import shlex
import statistics
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/dvc_yaml.py`

from bench.machine import describe
from bench.workspace import add_project_argument, run_dvc, tool_parser
from imgclf.atomic import write_text
from imgclf.errors import UserError, exit_on_user_error

DEFAULT_COMMANDS = ("status", "repro", "exp show --json", "metrics diff")
HIDE_C_PARSER = "sys.modules['_ruamel_yaml'] = None; "  # ruamel.yaml then falls back to Python
LAUNCH = "import sys; {hide}from dvc.cli import main; sys.exit(main(sys.argv[1:]))"


def dvc_seconds(project: Path, command: str, c_parser: bool) -> float:
    """Wall seconds of one `dvc COMMAND` in `project`, with or without the C parser."""
    launch = LAUNCH.format(hide="" if c_parser else HIDE_C_PARSER)
    started = time.perf_counter()
    run_dvc(shlex.split(command), project, [sys.executable, "-c", launch])
    return time.perf_counter() - started


def c_parser_installed() -> bool:
    """Whether ruamel.yaml's YAML(typ="safe"), which DVC loads its files with, gets the C parser."""
    return YAML(typ="safe").Parser.__name__ == "CParser"


def require_c_parser() -> None:
    """Stop, with what to do, where ruamel.yaml's C parser is not installed."""
    if not c_parser_installed():
        raise UserError(
            "ruamel.yaml's C parser is not installed: `pip install -r requirements.txt`"
        )


@exit_on_user_error
def main() -> None:
    parser = tool_parser(__doc__)
    add_project_argument(parser)
    parser.add_argument(
        "--command",
        action="append",
        metavar="ARGS",
        help=f"a dvc command, repeatable (without it: {', '.join(DEFAULT_COMMANDS)})",
    )
    parser.add_argument(
        "--repeats", type=int, default=4, help="alternating rounds (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the Markdown table")
    args = parser.parse_args()
    if args.repeats < 1:
        raise UserError(f"--repeats {args.repeats}: give 1 or more rounds")
    require_c_parser()
    commands = args.command or list(DEFAULT_COMMANDS)
    seconds: dict[tuple[str, bool], list[float]] = {}
    for round_ in range(args.repeats):
        for command in commands:
            # Each goes first in every other round: a command can leave work to the next one
            # (in the same order every round, `dvc exp show` after `dvc exp run` came out 1.26
            # times slower with the C parser, which ran first).
            for c_parser in (True, False) if round_ % 2 == 0 else (False, True):
                took = dvc_seconds(args.project, command, c_parser)
                seconds.setdefault((command, c_parser), []).append(took)
    lines = [
        "| command | with the C parser, s | without, s | ratio |",
        "|---|---|---|---|",
    ]
    for command in commands:
        with_c, without = (statistics.median(seconds[command, c]) for c in (True, False))
        lines.append(f"| `dvc {command}` | {with_c:.2f} | {without:.2f} | {with_c / without:.2f} |")
    invocation = shlex.join(["python", "bench/dvc_yaml.py", *sys.argv[1:]])
    report = (
        f"# DVC's time per command with ruamel.yaml's C parser and without\n\n"
        f"Project: `{args.project}`; the median of {args.repeats} alternating runs "
        f"({describe()}).\n\n" + "\n".join(lines) + f"\n\nCommand: `{invocation}`\n"
    )
    write_text(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
