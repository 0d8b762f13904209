"""Messages with a count or a list read right for one as for many."""

from __future__ import annotations

import pytest

from imgclf.wording import LISTED, counted, listed


@pytest.mark.parametrize(
    ("count", "noun", "words"),
    [(0, "epoch", "0 epochs"), (1, "epoch", "1 epoch"), (2, "more group", "2 more groups")],
)
def test_counted_is_singular_for_exactly_one(count: int, noun: str, words: str) -> None:
    assert counted(count, noun) == words


def test_a_long_list_names_its_first_items_and_counts_the_rest() -> None:
    assert listed(["a", "b"]) == "a; b"
    names = [str(n) for n in range(LISTED + 2)]
    assert listed(names) == "; ".join(names[:LISTED]) + " and 2 more"
