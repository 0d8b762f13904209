"""Look for duplicates, leakage and label conflicts before any training, and draw the data:
images per class and split, and a few images of every class."""

import numpy as np

from imgclf import paths
from imgclf.atomic import write_csv, write_json, write_text
from imgclf.cache import ImageCache
from imgclf.check import find_problems, group_rows, report
from imgclf.check_plots import class_counts_figure, class_samples, samples_figure
from imgclf.config import load_params
from imgclf.errors import UserError, exit_on_user_error
from imgclf.plots import save_figure
from imgclf.samples import SPLITS, load_split_data
from imgclf.wording import counted, listed

SAMPLES_PER_CLASS = 8


@exit_on_user_error
def main() -> None:
    params = load_params()
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    findings = find_problems(data, np.load(paths.THUMBNAILS, mmap_mode="r"), params.check)
    write_text(paths.CHECK_DIR / "report.md", report(findings, params.check.fail_on_leakage))
    write_csv(
        paths.CHECK_DIR / "duplicates.csv",
        ["group", "kind", "leak", "label_conflict", "path", "split", "label"],
        group_rows(findings),
    )
    metrics = findings.metrics()
    write_json(paths.METRICS / "check.json", metrics)
    for split in SPLITS:
        write_csv(
            paths.PLOTS / "class_counts" / f"{split}.csv",
            ["class", "images"],
            findings.class_counts.get(split, {}).items(),
        )
    save_figure(
        class_counts_figure(findings.class_counts, "Images per class and split"),
        paths.PLOTS / "class_counts.png",
    )
    save_figure(
        samples_figure(
            cache,
            class_samples(data, "train", SAMPLES_PER_CLASS),
            f"{SAMPLES_PER_CLASS} training images of each class",
        ),
        paths.PLOTS / "samples.png",
    )
    leaking = findings.leaking
    print(
        f"check: {len(findings.exact)} exact and "
        + counted(len(findings.near), "near-duplicate group")
        + f", {len(leaking)} leaking across splits,"
        f" {metrics['label_conflicts'] + metrics['near_label_conflicts']} under two labels;"
        f" details in {paths.CHECK_DIR / 'report.md'}"
    )
    if leaking and params.check.fail_on_leakage:
        groups = [
            " = ".join(f"{sample.path} ({split})" for sample, split in group.members)
            for group in leaking
        ]
        raise UserError(
            f"leakage between splits (check.fail_on_leakage is true): {listed(groups)}. "
            "Remove the copies from one side, or set check.fail_on_leakage: false"
        )


if __name__ == "__main__":
    main()
