"""The two models: a CNN from scratch and an ImageNet backbone, each wrapped in a Classifier."""

from __future__ import annotations

from imgclf.models.classifier import Classifier
from imgclf.models.ensemble import Ensemble, equal_weights, mean_probability_logits
from imgclf.models.scratch import build_scratch
from imgclf.models.transfer import build_transfer
from imgclf.paths import ModelName


def build_model(
    kind: ModelName,
    arch: str,
    num_classes: int,
    image_size: int,
    width: int = 0,
    pretrained: bool = False,
    weights: str | None = None,
    dropout: float | None = None,
) -> Classifier:
    """The named architecture. `width` sizes the scratch resnet and `dropout` sets a scratch
    network's (None: its own); `pretrained` loads ImageNet weights into a transfer model, from
    the file `weights` if given (timm models)."""
    if kind == "scratch":
        return build_scratch(arch, num_classes, image_size, width, dropout)
    return build_transfer(arch, num_classes, image_size, pretrained, weights)


__all__ = ["Classifier", "Ensemble", "build_model", "equal_weights", "mean_probability_logits"]
