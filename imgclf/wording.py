"""Counts and lists in words that read right for one as for many: "1 image", "2 images",
"a; b; c and 4 more"."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """`count` and the noun, singular for exactly one: "1 epoch", "0 epochs", "3 epochs"."""
    return f"{count} {noun if count == 1 else noun + 's'}"


LISTED = 5  # the most items a message names


def listed(items: list[str]) -> str:
    """The first LISTED of `items`, and how many more: "a; b; c; d; e and 2 more"."""
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return "; ".join(items[:LISTED]) + more
