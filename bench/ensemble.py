"""Ways to combine the two trained models, each fitted on the validation split and scored on
test, so the choice is made without looking at test:

- the mean of the probabilities (evaluate's `ensemble` with evaluate.ensemble_weights: equal);
- the weighted mean, the weights fitted on validation (ensemble_weights: fitted);
- the mean of the log-probabilities;
- each model's temperature fitted on validation, then the mean of the probabilities.

A last row gives the share of images that at least one model gets right: no way of combining
the two can score above it, so it says whether a target is within the pair's reach.

    python bench/ensemble.py --project WORK/project

WORK is a `bench/run.py --work WORK` folder (or any project whose models are trained).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/ensemble.py`

import numpy as np
import torch
import torch.nn.functional as F

from imgclf import paths
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.evaluate import fit_weights, load_trained, predict
from imgclf.models import equal_weights, mean_probability_logits
from imgclf.samples import load_split_data

TEMPERATURES = np.geomspace(0.25, 4, 41)

Logits = dict[str, torch.Tensor]  # per model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    args = parser.parse_args()
    os.chdir(args.project)
    params = load_params().evaluate
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    logits: dict[str, Logits] = {"val": {}, "test": {}}
    for name in paths.MODEL_NAMES:
        trained = load_trained(paths.checkpoint(name))
        for split in logits:
            indices = data.indices(split)
            logits[split][name] = predict(
                trained, cache, indices, params.batch_size, params.tta_flip
            )
    targets = {split: torch.as_tensor(data.targets(split)) for split in logits}
    rules = combination_rules(logits["val"], targets["val"])
    print(f"| rule | fitted on val | val acc | test acc ({len(targets['test'])} images) |")
    print("|---|---|---|---|")
    for label, (fitted, combine) in rules.items():
        val, test = (accuracy(combine(logits[s]), targets[s]) for s in ("val", "test"))
        print(f"| {label} | {fitted} | {val:.2%} | {test:.2%} |")
    val, test = (either_right(logits[s], targets[s]) for s in ("val", "test"))
    print(f"| either model right (no combination scores above it) | - | {val:.2%} | {test:.2%} |")


def combination_rules(
    val: Logits, targets: torch.Tensor
) -> dict[str, tuple[str, Callable[[Logits], torch.Tensor]]]:
    weights = fit_weights(list(val.values()), targets.numpy())
    temperature = {
        name: min(TEMPERATURES, key=lambda t: loss(each / t, targets)) for name, each in val.items()
    }

    def tempered(logits: Logits) -> torch.Tensor:
        return mean_probability({name: each / temperature[name] for name, each in logits.items()})

    fitted_temperatures = ", ".join(f"{name} T={t:.2f}" for name, t in temperature.items())
    return {
        "scratch alone": ("-", lambda logits: logits["scratch"]),
        "transfer alone": ("-", lambda logits: logits["transfer"]),
        "mean of probabilities": ("-", mean_probability),
        "mean of log-probabilities": ("-", mean_log_probability),
        "weighted mean of probabilities": (
            ", ".join(f"{name} {w:.2f}" for name, w in zip(val, weights, strict=True)),
            lambda logits: mean_probability_logits(list(logits.values()), weights),
        ),
        "tempered mean of probabilities": (fitted_temperatures, tempered),
    }


def mean_probability(logits: Logits) -> torch.Tensor:
    return mean_probability_logits(list(logits.values()), equal_weights(len(logits)))


def mean_log_probability(logits: Logits) -> torch.Tensor:
    return torch.stack([each.log_softmax(1) for each in logits.values()]).mean(0)


def either_right(logits: Logits, targets: torch.Tensor) -> float:
    right = torch.stack([each.argmax(1) == targets for each in logits.values()])
    return right.any(0).double().mean().item()


def loss(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return F.cross_entropy(logits, targets).item()


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return (logits.argmax(1) == targets).double().mean().item()


if __name__ == "__main__":
    main()
