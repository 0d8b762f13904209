"""Rebuild data/demo from scikit-learn's digits: 1,797 8x8 images of 10 handwritten digits.

    python scripts/make_demo.py [--out data/demo]

Writes train/<digit>/*.png and test/<digit>/*.png (labelled), predict/*.png (unlabelled),
and predict_labels.csv beside them, so the demo submission can be scored.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    out = parser.parse_args().out

    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)
    labels = digits.target
    order = np.arange(len(labels))
    train, rest = train_test_split(order, test_size=0.3, stratify=labels, random_state=SEED)
    test, predict = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=SEED)

    shutil.rmtree(out, ignore_errors=True)
    for split, indices in (("train", train), ("test", test)):
        for i in sorted(indices):
            folder = out / split / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(folder / f"digit_{i:04d}.png")
    (out / "predict").mkdir(parents=True)
    with open(out / "predict_labels.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "label"])
        for i in sorted(predict):
            Image.fromarray(images[i]).save(out / "predict" / f"image_{i:04d}.png")
            writer.writerow([f"image_{i:04d}", str(labels[i])])
    print(f"{out}: {len(train)} train, {len(test)} test, {len(predict)} predict images")


if __name__ == "__main__":
    main()
