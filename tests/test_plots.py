"""The pictures: what they select, and that each one is a PNG of a legible size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.cache import CacheWriter, ImageCache
from imgclf.check_plots import class_counts_figure, class_samples, samples_figure
from imgclf.evaluate import confident_mistakes
from imgclf.evaluate_plots import confusion_figure, mistakes_figure, per_class_figure
from imgclf.plots import learning_curves_figure, save_figure
from imgclf.samples import Sample, SplitData
from tests.conftest import assert_legible_png

CLASSES = ["cat", "dog", "horse"]


@pytest.fixture
def cache(tmp_path: Path) -> ImageCache:
    rng = np.random.default_rng(0)
    path = tmp_path / "images.npy"
    with CacheWriter(path, (16, 16, 3)) as writer:
        for _ in range(12):
            writer.append(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return ImageCache(path)


def split_data(labels: list[str], splits: list[str]) -> SplitData:
    samples = [
        Sample(i, f"train/{label}/{i}.png", "train", label, 16, 16, f"{i:064x}", f"{i:016x}")
        for i, label in enumerate(labels)
    ]
    return SplitData(samples, dict(enumerate(splits)), sorted(set(labels)), "fingerprint")


def test_confident_mistakes_are_the_wrong_predictions_most_confident_first() -> None:
    logits = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 9.0], [3.0, 0.0], [2.0, 0.0]])
    targets = np.array([1, 1, 0, 0, 1])  # wrong: rows 0, 2 and 4
    worst, confidence = confident_mistakes(logits, targets, count=2)
    assert worst.tolist() == [2, 0]
    expected = torch.tensor([[0.0, 9.0], [5.0, 0.0]]).softmax(1).max(1).values.numpy()
    assert np.allclose(confidence, expected)
    assert confident_mistakes(logits[:2], np.array([0, 1]), 5)[0].size == 0


def test_class_samples_spread_over_each_class_of_one_split() -> None:
    labels = ["cat"] * 9 + ["dog"] * 2 + ["horse"]
    splits = ["train"] * 9 + ["train", "test", "test"]
    chosen = class_samples(split_data(labels, splits), "train", per_class=3)
    assert chosen == {"cat": [0, 3, 6], "dog": [9]}


def test_every_picture_is_a_legible_png(tmp_path: Path, cache: ImageCache) -> None:
    history = [
        {"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e, "train_acc": e / 4, "val_acc": e / 5}
        for e in range(1, 5)
    ]
    counts = np.array([[5, 1, 0], [2, 6, 1], [0, 0, 7]])
    per_class = {
        model: [
            {"class": name, "precision": 0.9, "recall": 0.8 - 0.1 * i, "f1": 0.85, "support": 7}
            for i, name in enumerate(CLASSES)
        ]
        for model in ("scratch (resnet)", "transfer (efficientnet_lite0)")
    }
    data = split_data(["cat"] * 4 + ["dog"] * 5 + ["horse"] * 3, ["train"] * 12)
    figures = {
        "learning_curves": learning_curves_figure(history, 3, "scratch (resnet)"),
        "confusion": confusion_figure(counts, CLASSES, "counts"),
        "confusion_normalized": confusion_figure(counts, CLASSES, "rows", normalize=True),
        "per_class_scores": per_class_figure(per_class, "per class"),
        "mistakes": mistakes_figure(
            cache.read([0, 1, 2, 3, 4, 5, 6]), ["cat"] * 7, ["dog"] * 7, np.full(7, 0.9), "worst"
        ),
        "no_mistakes": mistakes_figure(cache.read([]), [], [], np.zeros(0), "no mistakes"),
        "class_counts": class_counts_figure(
            {"train": Counter(cat=40, dog=35, horse=5), "test": Counter(cat=10, dog=9)}, "counts"
        ),
        "samples": samples_figure(cache, class_samples(data, "train", 4), "samples"),
    }
    for name, figure in figures.items():
        save_figure(figure, tmp_path / f"{name}.png")
    for name in figures:
        assert_legible_png(tmp_path / f"{name}.png", min_side=100 if name == "no_mistakes" else 300)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["images.npy", *(f"{name}.png" for name in figures)]
    )
