"""The review's paired comparison: McNemar's exact test on the same test images."""

from __future__ import annotations

import pytest

from imgclf.review import pair, read_predictions


def predictions(labels: str, scratch: str) -> dict[str, dict[str, str]]:
    pairs = enumerate(zip(labels, scratch, strict=True))
    rows = [f"img{i}.png,{label},{guess}" for i, (label, guess) in pairs]
    return read_predictions("\n".join(["path,label,scratch", *rows]) + "\n")


@pytest.mark.parametrize(
    ("before", "now", "p_value", "beyond_noise"),
    [
        ("bbbbbbaaaa", "aaaaaaaaaa", 2 / 2**6, True),  # 6 images now right, none lost
        ("bbbbbaaaaa", "aaaaabaaaa", 2 * 7 / 2**6, False),  # 5 won, 1 lost: 1 + 6 of 64
        ("bbbbaaaaaa", "aaaabbbbaa", 1.0, False),  # 4 won, 4 lost
    ],
)
def test_the_images_that_changed_decide(
    before: str, now: str, p_value: float, beyond_noise: bool
) -> None:
    labels = "a" * 10
    (paired,) = pair(predictions(labels, before), predictions(labels, now))
    assert paired.images == 10
    assert paired.right_now - paired.right_before == paired.only_now - paired.only_before
    assert paired.p_value == pytest.approx(p_value)
    assert paired.beyond_noise is beyond_noise


def test_other_test_images_are_not_paired() -> None:
    assert pair(predictions("aab", "aab"), predictions("aaa", "aab")) == []
