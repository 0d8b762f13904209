"""Progress bars where someone watches: on a terminal. Written to a log, a pipe or DVC's queue,
a bar's carriage returns pile up into one long line, so there it is left out."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


def progress_bar(*args: Any, shown: bool = True, **kwargs: Any) -> tqdm:
    """tqdm's bar (same arguments), drawn only if `shown` and its stream is a terminal."""
    return tqdm(*args, disable=None if shown else True, **kwargs)
