"""Progress bars on a terminal, none in a log: a bar's carriage returns would pile up there."""

from __future__ import annotations

import io
import os
import tty

from imgclf.progress import progress_bar


def drawn(stream: io.TextIOBase, shown: bool = True) -> None:
    with progress_bar(range(3), desc="work", file=stream, shown=shown) as bar:
        for _ in bar:
            pass


def on_a_terminal(shown: bool) -> bytes:
    """What a bar writes to a terminal (a pseudo-terminal, raw: bytes as written)."""
    terminal, screen = os.openpty()
    tty.setraw(terminal)
    with os.fdopen(terminal, "w") as stream, os.fdopen(screen, "rb", buffering=0) as reader:
        drawn(stream, shown)
        stream.write("end")
        stream.flush()
        received = b""
        while not received.endswith(b"end"):  # read before closing: closing drops the rest
            received += reader.read(4096)
    return received


def test_a_bar_is_drawn_on_a_terminal_only_and_only_if_shown() -> None:
    assert b"work: 100%" in on_a_terminal(shown=True)
    assert on_a_terminal(shown=False) == b"end"
    log = io.StringIO()  # as a file or a pipe: no terminal
    drawn(log)
    assert log.getvalue() == ""
