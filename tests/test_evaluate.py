"""The figures of a scored split: the test accuracy with its 95 % interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from imgclf.scores import accuracy_interval, score


def wilson(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval, from its textbook formula."""
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return centre - half, centre + half


@pytest.mark.parametrize(("correct", "total"), [(259, 270), (1006, 1071), (10, 10), (0, 30)])
def test_the_interval_is_wilsons(correct: int, total: int) -> None:
    assert accuracy_interval(correct, total) == pytest.approx(wilson(correct, total), abs=1e-6)


def test_more_test_images_narrow_the_interval() -> None:
    low, high = accuracy_interval(90, 100)
    wide_low, wide_high = accuracy_interval(9, 10)
    assert wide_low < low < 0.9 < high < wide_high


def test_scores_carry_the_interval_of_their_accuracy() -> None:
    targets = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1, 0, 1, 0]), 2).float()
    metrics = score(logits, targets, ["a", "b"]).metrics
    assert metrics["acc"] == 0.75
    assert (metrics["acc_low"], metrics["acc_high"]) == pytest.approx(wilson(6, 8), abs=1e-6)


def test_macro_f1_leaves_out_a_class_the_test_split_lacks_and_no_model_predicts() -> None:
    # A user's test/ folder may lack a class that train/ has: all right is an F1 of 1.
    targets = np.array([0, 0, 1, 1])
    logits = torch.nn.functional.one_hot(torch.as_tensor(targets), 3).float()
    assert score(logits, targets, ["a", "b", "c"]).metrics["f1"] == 1.0
    wrongly_c = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 1]), 3).float()  # "c" counts
    assert score(wrongly_c, targets, ["a", "b", "c"]).metrics["f1"] == round((2 / 3 + 1 + 0) / 3, 6)
