"""The pictures: what they select, their wording and axes, and that each one is a PNG of a
legible size."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from imgclf.cache import CacheWriter, ImageCache
from imgclf.check_plots import class_counts_figure, class_samples, samples_figure
from imgclf.evaluate import confident_mistakes
from imgclf.evaluate_plots import (
    confusion_figure,
    mistakes_figure,
    mistakes_title,
    per_class_figure,
)
from imgclf.plots import learning_curves_figure, save_figure
from imgclf.samples import Sample, SplitData
from imgclf.train import curves_title
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


def history(train_loss: list[float], val_acc: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": t, "val_loss": t + 0.1, "train_acc": a, "val_acc": a}
        for e, (t, a) in enumerate(zip(train_loss, val_acc, strict=True), start=1)
    ]


def test_learning_curves_of_any_two_runs_share_their_axes() -> None:
    """Accuracy from 0 to 1, loss from 0 to 2 ln(classes), whatever the numbers."""
    bound = 2 * math.log(10)
    short = learning_curves_figure(history([2.0, 1.0], [0.3, 0.6]), 2, "a", 10)
    long = learning_curves_figure(history([0.9, 0.5, 0.2, 0.1], [0.8, 0.9, 0.9, 0.99]), 4, "b", 10)
    for figure in (short, long):
        loss, accuracy = figure.axes
        assert loss.get_ylim() == pytest.approx((0, bound))
        assert accuracy.get_ylim() == (0, 1)
        assert "2 ln 10 = 4.61" in loss.get_ylabel()
        labels = [text.get_text() for text in figure.legends[0].texts]
        assert labels[:2] == ["train", "validation"] and labels[-1].startswith("kept epoch")


def test_a_loss_above_the_axis_is_drawn_on_its_top_edge_and_marked() -> None:
    bound = 2 * math.log(3)
    figure = learning_curves_figure(history([9.0, 1.5, 1.0], [0.2, 0.5, 0.7]), 3, "run", 3)
    loss = figure.axes[0]
    train, validation = (line for line in loss.lines if line.get_label() in ("train", "validation"))
    assert list(train.get_ydata()) == pytest.approx([bound, 1.5, 1.0])
    assert list(validation.get_ydata()) == pytest.approx([bound, 1.6, 1.1])
    marks = [line for line in loss.lines if line.get_marker() == "^"]
    assert [(list(m.get_xdata()), list(m.get_ydata())) for m in marks] == [([1], [bound])] * 2
    assert all("above 2.20, drawn at the top" in m.get_label() for m in marks)
    assert not [line for line in figure.axes[1].lines if line.get_marker() == "^"]
    assert figure.get_suptitle() == "run"


@pytest.mark.parametrize(
    ("overrides", "title"),
    [
        ({}, "scratch (resnet), lr 0.002"),
        ({"scratch__lr_mult": 0.5, "scratch__arch": "original"}, "scratch (original), lr 0.001"),
    ],
)
def test_the_curves_title_names_model_architecture_and_learning_rate(
    make_params, overrides: dict, title: str
) -> None:
    assert curves_title("scratch", make_params(**overrides)) == title


def test_a_transfer_title_gives_the_backbone_rate_where_it_differs(make_params) -> None:
    slow = make_params(transfer__backbone_lr_mult=0.1, train__lr=0.001)
    assert (
        curves_title("transfer", slow)
        == "transfer (efficientnet_lite0), lr 0.001, backbone lr 0.0001"
    )
    frozen = make_params(transfer__backbone_lr_mult=0.1, transfer__freeze_backbone=True)
    assert curves_title("transfer", frozen) == "transfer (efficientnet_lite0), lr 0.002"


@pytest.mark.parametrize(
    ("shown", "mistakes", "title"),
    [
        (0, 0, "m: no mistakes on test"),
        (1, 1, "m: the only mistake on test"),
        (11, 11, "m: all 11 mistakes on test, the most confident first"),
        (24, 130, "m: the 24 most confident of 130 mistakes on test"),
    ],
)
def test_the_mistakes_title_reads_well_for_any_count(shown: int, mistakes: int, title: str) -> None:
    assert mistakes_title("m", shown, mistakes) == title


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
        "learning_curves": learning_curves_figure(history, 3, "scratch (resnet), lr 0.002", 3),
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
