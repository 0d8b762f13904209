"""Several trained classifiers as one model: the mean of their probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from imgclf.models.classifier import Classifier


class Ensemble(nn.Module):
    """Takes what each member takes (raw pixels; each resizes and normalises them its own way)
    and returns log-probabilities, which read as logits: their softmax is the mean of the
    members' probabilities."""

    def __init__(self, members: dict[str, Classifier]) -> None:
        super().__init__()
        self.members = nn.ModuleDict(members)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return mean_probability_logits([member(pixels) for member in self.members.values()])


def mean_probability_logits(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean of the models' probabilities, as log-probabilities (which read as logits:
    their softmax is that mean)."""
    return torch.stack([each.softmax(1) for each in logits]).mean(0).log()
