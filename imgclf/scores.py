"""The numbers a review compares: accuracy with its 95 % interval, macro F1, loss, per-class
scores and the confusion matrix of one model's logits on a labelled split. Apart from
imgclf.evaluate because scikit-learn and SciPy take about a second to import, and the stages
that only run a model (make_submission, export) have no use for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


@dataclass(frozen=True)
class Scores:
    metrics: dict[str, Any]
    per_class: list[dict[str, Any]]  # class, precision, recall, f1, support
    confusion: np.ndarray  # counts, rows true, columns predicted
    predicted: np.ndarray


def score(logits: torch.Tensor, targets: np.ndarray, classes: list[str]) -> Scores:
    predicted = logits.argmax(1).numpy()
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predicted, labels=labels, zero_division=0
    )
    loss = F.cross_entropy(logits, torch.as_tensor(targets)).item()
    low, high = accuracy_interval(int((predicted == targets).sum()), len(targets))
    metrics = {
        "acc": round(float(accuracy_score(targets, predicted)), 6),
        "acc_low": round(low, 6),
        "acc_high": round(high, 6),
        "f1": round(float(macro_f1(targets, predicted)), 6),
        "loss": round(loss, 6),
    }
    per_class = [
        {
            "class": name,
            "precision": round(float(precision[i]), 6),
            "recall": round(float(recall[i]), 6),
            "f1": round(float(f1[i]), 6),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    ]
    return Scores(
        metrics, per_class, confusion_matrix(targets, predicted, labels=labels), predicted
    )


def macro_f1(targets: np.ndarray, predicted: np.ndarray) -> float:
    """The mean F1 over the classes the split holds or a model predicts: a class of train/
    that a user's test/ folder lacks, and that nothing is taken for, has no F1 to count."""
    seen = np.union1d(targets, predicted)
    return float(f1_score(targets, predicted, average="macro", labels=seen, zero_division=0))


def accuracy_interval(correct: int, total: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of an accuracy measured on `total` images: where the
    accuracy on all such images would lie, given this sample of them."""
    interval = binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)
