"""Trained models: loaded, run on a split of the cache, and combined into the ensemble."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from imgclf import checkpoint
from imgclf.cache import ImageCache
from imgclf.config import EvaluateParams
from imgclf.loader import CachedImages, make_batches
from imgclf.models import (
    Classifier,
    Ensemble,
    build_model,
    equal_weights,
    mean_probability_logits,
)
from imgclf.predict import predict_logits
from imgclf.runtime import pick_device, uses_bfloat16
from imgclf.samples import SplitData

ENSEMBLE = "ensemble"  # both models together: the weighted mean of their probabilities
WEIGHT_STEPS = 20  # a fitted ensemble weight is a multiple of 1/20


@dataclass(frozen=True)
class Trained:
    model: Classifier | Ensemble
    meta: dict[str, Any]  # everything in the checkpoint but the weights
    weights_sha256: str


def load_trained(path: Path) -> Trained:
    return trained_from(checkpoint.load(path))


def trained_from(saved: dict[str, Any]) -> Trained:
    """The model of a loaded checkpoint (`checkpoint.load`), built and given its weights."""
    meta = {key: value for key, value in saved.items() if key != "model"}
    model = build_model(**meta["architecture"])
    model.load_state_dict(saved["model"])
    return Trained(model, meta, checkpoint.weights_digest(saved["model"]))


def predict(
    trained: Trained,
    cache: ImageCache,
    indices: np.ndarray,
    batch_size: int,
    tta_flip: bool,
    float32_on_cpu: bool = False,
) -> torch.Tensor:
    """Logits of the images at cache rows `indices`, on the best available device (in bf16 on
    a GPU), or on the CPU in float32: the exported model's arithmetic, which a GPU's TF32
    convolutions would not match either."""
    device = torch.device("cpu") if float32_on_cpu else pick_device("auto")
    model = trained.model.to(device, memory_format=torch.channels_last)
    dataset = CachedImages(cache, indices, np.zeros(len(indices), dtype=np.int64))
    batches = make_batches(dataset, batch_size, shuffle=False, seed=0, device=device)
    bfloat16 = not float32_on_cpu and uses_bfloat16(device)
    logits, _ = predict_logits(model, batches.epoch(0), device, bfloat16, tta_flip=tta_flip)
    return logits


def ensemble_of(trained: dict[str, Trained], weights: tuple[float, ...]) -> Trained:
    """The trained models as one (imgclf.models.Ensemble), for the export; its metadata is
    the first member's, with every member's under "members"."""
    first = next(iter(trained.values()))
    meta = {**first.meta, "members": {name: each.meta for name, each in trained.items()}}
    digest = hashlib.sha256("".join(each.weights_sha256 for each in trained.values()).encode())
    members = {name: each.model for name, each in trained.items()}
    return Trained(Ensemble(members, weights), meta, digest.hexdigest())


def ensemble_weights(
    trained: dict[str, Trained], params: EvaluateParams, data: SplitData, cache: ImageCache
) -> tuple[float, ...]:
    """The weights of the models' probabilities in the ensemble, in `trained`'s order, by
    evaluate.ensemble_weights: `equal`, or `fitted` on the validation split."""
    if params.ensemble_weights == "equal" or not len(data.indices("val")):
        return equal_weights(len(trained))
    logits = [split_logits(each, "val", data, cache, params) for each in trained.values()]
    return fit_weights(logits, data.targets("val"))


def split_logits(
    trained: Trained, split: str, data: SplitData, cache: ImageCache, params: EvaluateParams
) -> torch.Tensor:
    """A trained model's logits on one split, as the evaluate stage tests it (test-time flips
    by evaluate.tta_flip)."""
    return predict(trained, cache, data.indices(split), params.batch_size, params.tta_flip)


def fit_weights(logits: list[torch.Tensor], targets: np.ndarray) -> tuple[float, ...]:
    """Two models' weights, multiples of 1/WEIGHT_STEPS, whose weighted mean of probabilities
    has the lowest loss on these logits (the weights nearest to equal on a tie)."""
    if len(logits) != 2:
        raise ValueError(f"fitted weights are for two models, not {len(logits)}")
    labels = torch.as_tensor(targets)

    def loss(step: int) -> tuple[float, int]:
        weights = (1 - step / WEIGHT_STEPS, step / WEIGHT_STEPS)
        mixed = mean_probability_logits(logits, weights)
        # rounded so that a difference in the last bits of the arithmetic is a tie
        return round(F.cross_entropy(mixed, labels).item(), 9), abs(2 * step - WEIGHT_STEPS)

    best = min(range(WEIGHT_STEPS + 1), key=loss)
    return (1 - best / WEIGHT_STEPS, best / WEIGHT_STEPS)


def confident_mistakes(
    logits: torch.Tensor, targets: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of up to `count` misclassified images, the most confident first, and the
    probability the model gave each wrong prediction."""
    confidence = logits.softmax(1).max(1).values.numpy()
    wrong = np.flatnonzero(logits.argmax(1).numpy() != targets)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    return worst, confidence[worst]
