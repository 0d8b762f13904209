"""Pictures for people: confusion matrices and learning curves as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from imgclf.atomic import atomic_path


def save_figure(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


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


def learning_curves_figure(history: list[dict[str, float]], best_epoch: int, title: str) -> Figure:
    """Loss and accuracy per epoch, train against validation, the best epoch marked."""
    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, metric in ((loss_axes, "loss"), (acc_axes, "acc")):
        axes.plot(epochs, [row[f"train_{metric}"] for row in history], "o-", label="train")
        axes.plot(epochs, [row[f"val_{metric}"] for row in history], "o-", label="validation")
        axes.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch ({best_epoch})")
        axes.set_xlabel("epoch")
        axes.set_ylabel("accuracy" if metric == "acc" else "cross-entropy loss")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    return figure
