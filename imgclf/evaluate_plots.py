"""evaluate's pictures: confusion matrices, per-class scores, the most confident mistakes."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from imgclf.plots import image_grid

SCORES = ("precision", "recall", "f1")


def confusion_figure(
    counts: np.ndarray, classes: list[str], title: str, normalize: bool = False
) -> Figure:
    """The matrix with its numbers in the cells: counts, or each row as fractions of 1."""
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    size = max(4.5, 0.55 * len(classes) + 2.5)
    figure, axes = plt.subplots(figsize=(size, size))
    display = ConfusionMatrixDisplay(values, display_labels=classes)
    display.plot(
        ax=axes,
        cmap="Blues",
        colorbar=False,
        values_format=".2f" if normalize else "d",
        xticks_rotation=45,
    )
    axes.set_title(title)
    return figure


def per_class_figure(per_class: dict[str, list[dict[str, Any]]], title: str) -> Figure:
    """Precision, recall and F1 of every class, one panel each, the models' bars side by side."""
    classes = [row["class"] for row in next(iter(per_class.values()))]
    height = 0.8 / len(per_class)
    figure, panels = plt.subplots(
        1, len(SCORES), figsize=(12, max(3.5, 0.45 * len(classes) + 1.5)), sharey=True
    )
    for axes, score in zip(panels, SCORES, strict=True):
        for number, (model, rows) in enumerate(per_class.items()):
            positions = np.arange(len(classes)) + (number - (len(per_class) - 1) / 2) * height
            bars = axes.barh(positions, [row[score] for row in rows], height, label=model)
            axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
        axes.set_title(score)
        axes.set_xlim(0, 1.12)
        axes.grid(axis="x", alpha=0.3)
    panels[0].set_yticks(np.arange(len(classes)), classes)
    panels[0].invert_yaxis()
    panels[0].set_ylabel("class")
    figure.suptitle(title)
    figure.tight_layout()
    figure.legend(
        *panels[0].get_legend_handles_labels(),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=len(per_class),
    )
    return figure


def mistakes_title(model: str, shown: int, mistakes: int) -> str:
    """The title of `mistakes_figure`: `shown` of the model's `mistakes` on the test split."""
    if mistakes == 0:
        return f"{model}: no mistakes on test"
    if mistakes == 1:
        return f"{model}: the only mistake on test"
    if shown == mistakes:
        return f"{model}: all {mistakes} mistakes on test, the most confident first"
    return f"{model}: the {shown} most confident of {mistakes} mistakes on test"


def mistakes_figure(
    images: np.ndarray,
    true_labels: list[str],
    predicted_labels: list[str],
    probabilities: np.ndarray,
    title: str,
    columns: int = 6,
) -> Figure:
    """Misclassified images, each captioned with its true and predicted label and the
    probability the model gave its prediction."""
    captions = [
        f"true {true}, predicted {predicted}\nprobability {probability:.2f}"
        for true, predicted, probability in zip(
            true_labels, predicted_labels, probabilities, strict=True
        )
    ]
    return image_grid(images, captions, columns, title)
