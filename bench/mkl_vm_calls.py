"""Which of MKL's vector math functions a command calls, and how often.

On the CPU torch computes exp, log, sqrt, sin, cos, tanh and a few more with MKL's vector math
(VM) library. Its results are not correctly rounded and their last bits change with MKL's
code path (imgclf/runtime.py): a deterministic stage that calls them gave other bits on an
Intel Xeon than on AMD EPYCs. This runs the command under gdb with a counting
breakpoint on each of them, prints the counts last, and exits 1 if there was a call, 0 if
none, 2 if the command failed.

    python bench/mkl_vm_calls.py python -m stages.train_scratch
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The VM functions torch calls (aten/src/ATen/cpu/vml.h), in single and double precision.
FUNCTIONS = "Acos Asin Atan Cos Erf ErfInv Erfc Exp Ln Log10 Log2 Sin Sqrt Tan Tanh Trunc"
SYMBOLS = [prefix + name for prefix in ("vms", "vmd") for name in FUNCTIONS.split()]
GDB_QUIET = [
    "-q",
    "-iex",
    "set auto-load python-scripts off",
    "-iex",
    "set print thread-events off",
]
REPORT = "MKL_VM_CALLS_REPORT"  # the file where gdb writes the counts and the exit status


def main(command: list[str]) -> int:
    if not command or command[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if shutil.which("gdb") is None:
        print("mkl_vm_calls needs gdb: install it (Debian: apt install gdb)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder, "report")
        subprocess.run(
            ["gdb", *GDB_QUIET, "-batch", "-x", __file__, "--args", *command],
            env=os.environ | {REPORT: str(report)},
            check=False,
        )
        if not report.exists():
            print(f"gdb could not run {command[0]}", file=sys.stderr)
            return 2
        calls, status = report.read_text().splitlines()
    print(f"MKL vector math calls: {calls}")
    if status != "0":
        print(f"{command[0]} failed (exit status {status})", file=sys.stderr)
        return 2
    return 0 if calls == "none" else 1


def count_calls(gdb) -> None:  # noqa: ANN001 (gdb's module, importable only inside gdb)
    """Inside gdb: run the program, counting each call of a VM function without stopping."""
    calls: dict[str, int] = {}

    class Counter(gdb.Breakpoint):
        def stop(self) -> bool:
            calls[self.location] = calls.get(self.location, 0) + 1
            return False

    gdb.execute("set pagination off")
    gdb.execute("set print inferior-events off")
    gdb.execute("set breakpoint pending on")  # torch's library loads after the program starts
    gdb.vm_counter = Counter  # reachable from a command string
    for symbol in SYMBOLS:  # quietly: none is defined before torch's library loads
        gdb.execute(f"python gdb.vm_counter({symbol!r}, internal=True)", to_string=True)
    gdb.execute("run")
    status = gdb.parse_and_eval("$_exitcode")
    counted = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
    Path(os.environ[REPORT]).write_text(
        f"{counted or 'none'}\n{'signal' if status.type.code == gdb.TYPE_CODE_VOID else status}\n"
    )


if __name__ == "__main__":
    try:
        import gdb  # present when gdb runs this file
    except ImportError:
        sys.exit(main(sys.argv[1:]))
    count_calls(gdb)
