"""Messages with a count read right for one as for many."""

from __future__ import annotations

import pytest

from imgclf.wording import counted


@pytest.mark.parametrize(
    ("count", "noun", "words"),
    [(0, "epoch", "0 epochs"), (1, "epoch", "1 epoch"), (2, "more group", "2 more groups")],
)
def test_counted_is_singular_for_exactly_one(count: int, noun: str, words: str) -> None:
    assert counted(count, noun) == words
