"""Score both trained models on the test split: metrics, per-class scores, confusion matrices,
and pictures of each model's most confident mistakes."""

from imgclf import paths
from imgclf.atomic import write_csv, write_json
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import confident_mistakes, load_trained, predict, score
from imgclf.evaluate_plots import (
    confusion_figure,
    mistakes_figure,
    mistakes_title,
    per_class_figure,
)
from imgclf.plots import save_figure
from imgclf.samples import load_split_data

MISTAKES_SHOWN = 24


@exit_on_user_error
def main() -> None:
    params = load_params().evaluate
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    indices, targets = data.indices("test"), data.targets("test")
    results, per_class = {}, {}
    for name in paths.MODEL_NAMES:
        trained = load_trained(paths.checkpoint(name))
        arch = trained.meta["architecture"]["arch"]
        logits = predict(trained, cache, indices, params.batch_size, params.tta_flip)
        scores = score(logits, targets, data.classes)
        results[name] = {
            **{f"test_{key}": value for key, value in scores.metrics.items()},
            "checkpoint_epoch": trained.meta["epoch"],
            "weights_sha256": trained.weights_sha256[:16],
        }
        per_class[f"{name} ({arch})"] = scores.per_class
        write_csv(
            paths.PLOTS / "confusion" / f"{name}.csv",
            ["actual", "predicted"],
            (
                (data.classes[t], data.classes[p])
                for t, p in zip(targets, scores.predicted, strict=True)
            ),
        )
        write_csv(
            paths.PLOTS / "per_class" / f"{name}.csv",
            list(scores.per_class[0]),
            (row.values() for row in scores.per_class),
        )
        for normalize, suffix in ((False, ""), (True, "_normalized")):
            title = f"{name} ({arch}) on test" + (", row-normalised" if normalize else "")
            save_figure(
                confusion_figure(scores.confusion, data.classes, title, normalize),
                paths.PLOTS / f"confusion_{name}{suffix}.png",
            )
        worst, confidence = confident_mistakes(logits, targets, MISTAKES_SHOWN)
        wrong = int((scores.predicted != targets).sum())
        save_figure(
            mistakes_figure(
                cache.read(indices[worst]),
                [data.classes[t] for t in targets[worst]],
                [data.classes[p] for p in scores.predicted[worst]],
                confidence,
                mistakes_title(f"{name} ({arch})", len(worst), wrong),
            ),
            paths.PLOTS / f"mistakes_{name}.png",
        )
        print(f"evaluate {name}: " + ", ".join(f"{k} {v}" for k, v in scores.metrics.items()))
    save_figure(
        per_class_figure(per_class, "Per-class scores on the test split"),
        paths.PLOTS / "per_class_scores.png",
    )
    write_json(paths.METRICS / "evaluate.json", results)


if __name__ == "__main__":
    main()
