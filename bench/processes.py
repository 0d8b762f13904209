"""Commands a benchmark runs, stopped with it: when Ctrl-C or SIGTERM stops a benchmark, the
pipeline it started stops too, every process of it, before the benchmark removes its folders."""

from __future__ import annotations

import contextlib
import signal
import subprocess

import psutil

GRACE_S = 30  # for the processes to clean up after SIGINT, before SIGKILL


def wait(process: subprocess.Popen) -> int:
    """The exit status of `process`. If the wait is interrupted, the process and every process
    it started are stopped before the interruption goes on: after Ctrl-C, which reached them
    too, they are given GRACE_S to finish; after anything else (SIGTERM under
    imgclf.termination.exit_on_sigterm) they are sent SIGINT first, as Ctrl-C would. Those
    left then (SIGINT is ignored where the benchmark started with it ignored, as `&` in a
    script does) are killed."""
    try:
        return process.wait()
    except BaseException as interruption:
        family = with_descendants(process.pid)
        if not isinstance(interruption, KeyboardInterrupt):
            for member in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.send_signal(signal.SIGINT)
        _, left = psutil.wait_procs(family, timeout=GRACE_S)
        for member in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        process.wait()
        raise


def with_descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []
