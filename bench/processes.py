"""Commands a benchmark runs, stopped with it: when Ctrl-C or SIGTERM stops a benchmark, the
pipeline it started stops too, every process of it, before the benchmark removes its folders."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

GRACE_S = 30  # for the processes to clean up after SIGINT, before SIGKILL


def start(command: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """`command` in a session of its own, so that it and every process it starts (in that
    session: DVC's stages, bench/without_dvc.py's) can be stopped together (`wait`)."""
    return subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)


def wait(process: subprocess.Popen) -> int:
    """The exit status of `process` (from `start`). If the wait is interrupted (Ctrl-C, or
    SIGTERM under imgclf.termination.exit_on_sigterm), its session is sent SIGINT, as Ctrl-C
    would, then SIGKILL when the process has ended or after GRACE_S (SIGINT is ignored where
    the benchmark was started with it ignored, as `&` in a script does), and the interruption
    goes on."""
    try:
        return process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=GRACE_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what is left of its session
        process.wait()
        raise
