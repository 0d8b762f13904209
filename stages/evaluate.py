"""Score both trained models on the test split: metrics, per-class scores, confusion matrices,
and pictures of each model's most confident mistakes."""

from imgclf import paths
from imgclf.atomic import write_csv, write_json
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import (
    ENSEMBLE,
    confident_mistakes,
    ensemble_weights,
    load_trained,
    split_logits,
)
from imgclf.evaluate_plots import (
    confusion_figure,
    mistakes_figure,
    mistakes_title,
    per_class_figure,
)
from imgclf.models import mean_probability_logits
from imgclf.plots import save_figure
from imgclf.runtime import (
    describe_runtime,
    keep_freed_memory,
    pick_device,
    pin_cpu_arithmetic,
)
from imgclf.samples import load_split_data
from imgclf.scores import score

MISTAKES_SHOWN = 24


@exit_on_user_error
def main() -> None:
    all_params = load_params()
    pin_cpu_arithmetic(all_params.train)
    keep_freed_memory()
    params = all_params.evaluate
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    indices, targets = data.indices("test"), data.targets("test")
    results, per_class, provenance = {}, {}, {}
    test = data.subset("test")
    predictions = {"path": [s.path for s in test], "label": [s.label for s in test]}
    all_trained = {name: load_trained(paths.checkpoint(name)) for name in paths.MODEL_NAMES}
    all_logits = []
    for name, trained in all_trained.items():
        arch = trained.meta["architecture"]["arch"]
        logits = split_logits(trained, "test", data, cache, params)
        all_logits.append(logits)
        scores = score(logits, targets, data.classes)
        results[name] = {f"test_{key}": value for key, value in scores.metrics.items()}
        provenance[name] = {
            "checkpoint_epoch": trained.meta["epoch"],
            "weights_sha256": trained.weights_sha256,
        }
        predictions[name] = [data.classes[i] for i in scores.predicted]
        per_class[f"{name} ({arch})"] = scores.per_class
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
        report(name, scores.metrics, len(targets))
    weights = ensemble_weights(all_trained, params, data, cache)
    ensemble = score(mean_probability_logits(all_logits, weights), targets, data.classes)
    results[ENSEMBLE] = {f"test_{key}": value for key, value in ensemble.metrics.items()}
    predictions[ENSEMBLE] = [data.classes[i] for i in ensemble.predicted]
    provenance[ENSEMBLE] = {"weights": dict(zip(all_trained, weights, strict=True))}
    shares = ", ".join(f"{name} {w:.2f}" for name, w in zip(all_trained, weights, strict=True))
    described = f"both models' probabilities weighted {shares} ({params.ensemble_weights})"
    report(f"{ENSEMBLE} ({described})", ensemble.metrics, len(targets))
    save_figure(
        per_class_figure(per_class, "Per-class scores on the test split"),
        paths.PLOTS / "per_class_scores.png",
    )
    for name in [*all_trained, ENSEMBLE]:  # what DVC draws its confusion matrices from
        write_csv(
            paths.PLOTS / "confusion" / f"{name}.csv",
            ["actual", "predicted"],
            zip(predictions["label"], predictions[name], strict=True),
        )
    write_json(paths.METRICS / "evaluate.json", results)
    write_csv(paths.TEST_PREDICTIONS, list(predictions), zip(*predictions.values(), strict=True))
    provenance["runtime"] = describe_runtime(pick_device("auto"))
    write_json(paths.provenance("evaluate"), provenance)


def report(name: str, metrics: dict, images: int) -> None:
    print(
        f"evaluate {name}: test accuracy {metrics['acc']:.4f} (95 % interval "
        f"{metrics['acc_low']:.4f} to {metrics['acc_high']:.4f}, {images} images), macro F1 "
        f"{metrics['f1']:.4f}, loss {metrics['loss']:.4f}"
    )


if __name__ == "__main__":
    main()
