"""SIGTERM (`kill`, `timeout`) as an exception, so that a command stopped by it cleans up."""

from __future__ import annotations

import signal
from types import FrameType


class Terminated(SystemExit):
    """SIGTERM, raised where the command was; its exit status is 143, as the signal's."""


def exit_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated, where the default is instant death: `finally`
    blocks and atomic_open's cleanup run, so an unfinished output is removed and the file it
    was to replace is left as it was."""
    signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)
