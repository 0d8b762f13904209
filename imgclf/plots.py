"""Pictures for people: the shared PNG writer, learning curves and grids of images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from imgclf.atomic import atomic_path


def save_figure(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


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


def image_grid(
    images: Sequence[np.ndarray | None],
    captions: list[str],
    columns: int,
    title: str,
    row_labels: list[str] | None = None,
) -> Figure:
    """uint8 (h, w, 3) images in rows of `columns`, each with its caption below it; a None
    leaves its cell empty."""
    rows = max(1, math.ceil(len(images) / columns))
    caption_lines = max((caption.count("\n") + 1 for caption in captions), default=0)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.35 * columns + (0.8 if row_labels else 0), (1.35 + 0.2 * caption_lines) * rows),
        squeeze=False,
    )
    for position, cell in enumerate(axes.flat):
        cell.set_xticks([])
        cell.set_yticks([])
        if position < len(images) and images[position] is not None:
            cell.imshow(images[position], interpolation="nearest")
            cell.set_xlabel(captions[position], fontsize=8)
        else:
            cell.set_frame_on(False)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
