"""check's pictures: images per class and split, and a few images of every class."""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from imgclf.cache import ImageCache
from imgclf.plots import image_grid
from imgclf.samples import SplitData


def class_counts_figure(class_counts: dict[str, Counter], title: str) -> Figure:
    """Bars of images per class, one colour per split, the count on each bar."""
    classes = sorted({name for counts in class_counts.values() for name in counts})
    width = 0.8 / max(1, len(class_counts))
    figure, axes = plt.subplots(figsize=(max(6.0, 0.7 * len(classes) + 2), 4.5))
    for number, (split, counts) in enumerate(class_counts.items()):
        positions = np.arange(len(classes)) + (number - (len(class_counts) - 1) / 2) * width
        bars = axes.bar(positions, [counts.get(name, 0) for name in classes], width, label=split)
        axes.bar_label(bars, fontsize=7, padding=1)
    axes.set_xticks(np.arange(len(classes)), classes, rotation=45 if len(classes) > 12 else 0)
    axes.set_xlabel("class")
    axes.set_ylabel("images")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(title="split", loc="upper left", bbox_to_anchor=(1.01, 1))
    axes.set_title(title)
    return figure


def class_samples(data: SplitData, split: str, per_class: int) -> dict[str, list[int]]:
    """Cache rows of up to `per_class` images of each class, spread over the class's files."""
    by_class: dict[str, list[int]] = {name: [] for name in data.classes}
    for sample in data.subset(split):
        by_class.setdefault(sample.label, []).append(sample.index)
    return {
        name: rows[:: max(1, len(rows) // per_class)][:per_class]
        for name, rows in by_class.items()
        if rows
    }


def samples_figure(cache: ImageCache, rows_by_class: dict[str, list[int]], title: str) -> Figure:
    """One row of images per class, the class name on the left."""
    columns = max(len(rows) for rows in rows_by_class.values())
    images: list[np.ndarray | None] = []
    for rows in rows_by_class.values():
        images += list(cache.read(rows)) + [None] * (columns - len(rows))
    return image_grid(images, [""] * len(images), columns, title, row_labels=list(rows_by_class))
