"""Several trained classifiers as one model: the weighted mean of their probabilities."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import nn

from imgclf.models.classifier import Classifier


class Ensemble(nn.Module):
    """Takes what each member takes (raw pixels; each resizes and normalises them its own way)
    and returns log-probabilities, which read as logits: their softmax is the weighted mean of
    the members' probabilities. `weights` are in the members' order and sum to 1."""

    def __init__(self, members: dict[str, Classifier], weights: Sequence[float]) -> None:
        super().__init__()
        self.members = nn.ModuleDict(members)
        self.weights = tuple(weights)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits = [member(pixels) for member in self.members.values()]
        return mean_probability_logits(logits, self.weights)


def equal_weights(count: int) -> tuple[float, ...]:
    return (1 / count,) * count


def mean_probability_logits(
    logits: Sequence[torch.Tensor], weights: Sequence[float]
) -> torch.Tensor:
    """The models' probabilities averaged with `weights` (which sum to 1), as
    log-probabilities (which read as logits: their softmax is that mean). Summed in log space
    with torch's own kernels: torch.log on the CPU would call MKL's vector math
    (imgclf/runtime.py says why not)."""
    weighted = [
        each.log_softmax(1) + math.log(w) for w, each in zip(weights, logits, strict=True) if w > 0
    ]
    return functools.reduce(torch.logaddexp, weighted)
