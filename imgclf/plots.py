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
from matplotlib.ticker import MaxNLocator

from imgclf.atomic import atomic_path


def save_figure(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def learning_curves_figure(
    history: list[dict[str, float]], best_epoch: int, title: str, classes: int
) -> Figure:
    """Loss and accuracy per epoch, train against validation, the kept epoch marked, on axes
    fixed for every run with this many classes, so that two runs' pictures compare side by
    side: accuracy from 0 to 1, loss from 0 to twice that of a uniform guess (2 ln classes).
    A loss above that is drawn on the top edge as a triangle."""
    epochs = [row["epoch"] for row in history]
    loss_top = 2 * math.log(classes)
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_label = f"cross-entropy loss (axis ends at 2 ln {classes} = {loss_top:.2f})"
    panels = ((loss_axes, "loss", loss_top, loss_label), (acc_axes, "acc", 1.0, "accuracy"))
    for axes, metric, top, label in panels:
        for split, name in (("train", "train"), ("val", "validation")):
            values = [row[f"{split}_{metric}"] for row in history]
            (line,) = axes.plot(
                epochs, [min(v, top) for v in values], "o-", label=name, clip_on=False
            )
            above = [epoch for epoch, value in zip(epochs, values, strict=True) if value > top]
            if above:
                axes.plot(
                    above,
                    [top] * len(above),
                    "^",
                    color=line.get_color(),
                    markersize=11,
                    clip_on=False,
                    label=f"{name}: above {top:.2f}, drawn at the top",
                )
        axes.axvline(best_epoch, color="grey", linestyle="--", label=f"kept epoch ({best_epoch})")
        axes.set_ylim(0, top)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    handles, labels = loss_axes.get_legend_handles_labels()  # the loss has every kind of mark
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=3)
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
        # 0.5 in. for the title: tight_layout takes the room from the rows otherwise
        figsize=(
            1.35 * columns + (0.8 if row_labels else 0),
            (1.35 + 0.2 * caption_lines) * rows + 0.5,
        ),
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
