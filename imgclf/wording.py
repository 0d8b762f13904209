"""Counts in words that read right for one as for many: "1 image", "2 images"."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """`count` and the noun, singular for exactly one: "1 epoch", "0 epochs", "3 epochs"."""
    return f"{count} {noun if count == 1 else noun + 's'}"
