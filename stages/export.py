"""Export the submitted model (submission.model) as ONNX with its model card, after checking
on every test image that ONNX Runtime predicts what PyTorch predicts."""

import time

import numpy as np

from imgclf import paths
from imgclf.atomic import atomic_open, write_json
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.errors import UserError, exit_on_user_error
from imgclf.evaluate import ENSEMBLE, ensemble_of, ensemble_weights, load_trained
from imgclf.inference import card_path
from imgclf.onnx_export import agreed_decimals, model_card, onnx_bytes, verify
from imgclf.runtime import keep_freed_memory, pin_cpu_arithmetic
from imgclf.samples import load_split_data
from imgclf.submission import choose_model


@exit_on_user_error
def main() -> None:
    params = load_params()
    pin_cpu_arithmetic(params.train)
    keep_freed_memory()
    started = time.perf_counter()
    trained = {name: load_trained(paths.checkpoint(name)) for name in paths.MODEL_NAMES}
    val_acc = {name: model.meta["val_acc"] for name, model in trained.items()}
    chosen = choose_model(params.submission.model, val_acc)
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    if chosen == ENSEMBLE:
        weights = ensemble_weights(trained, params.evaluate, data, cache)
        model = ensemble_of(trained, weights)
    else:
        model = trained[chosen]
    indices, targets = data.indices("test"), data.targets("test")
    image_size = model.meta["provenance"]["params"]["image_size"]  # the cache's, as trained

    exported = onnx_bytes(model.model, image_size)
    check = verify(exported, model, cache, indices, params.evaluate.batch_size, params.train)
    if check.disagreements:
        raise UserError(
            f"export: ONNX Runtime predicts another class than PyTorch on "
            f"{check.disagreements} of the {len(indices)} test images (largest probability "
            f"difference {check.max_prob_diff:.3g}); nothing was written. Report it with the "
            "versions of torch, onnxscript and onnxruntime"
        )
    test_acc = round(float(np.mean(check.predicted == targets)), 6)

    for other in (*paths.MODEL_NAMES, ENSEMBLE):  # the folder holds the submitted model only
        paths.exported(other).unlink(missing_ok=True)
        card_path(paths.exported(other)).unlink(missing_ok=True)
    target = paths.exported(chosen)
    with atomic_open(target, "wb") as file:
        file.write(exported)
    write_json(card_path(target), model_card(chosen, model, image_size, test_acc, params.train))
    decimals = agreed_decimals(check.max_prob_diff)
    summary = {
        "model": chosen,
        "test_images": len(indices),
        "agreement": 1 - check.disagreements / len(indices),
        "prob_agreement_decimals": decimals,
        "test_acc": test_acc,
    }
    write_json(paths.METRICS / "export.json", {"export": summary})
    timing = {
        "seconds": round(time.perf_counter() - started, 2),
        "max_prob_diff": check.max_prob_diff,
        "onnx_images_per_s": check.onnx_images_per_s,
    }
    write_json(paths.timing("export"), {"export": timing})
    print(
        f"export: the {chosen} model in {target} ({len(exported) / 1e6:.1f} MB) and its card "
        f"{card_path(target)}; ONNX Runtime agrees with PyTorch on all {len(indices)} test "
        f"images, largest probability difference {check.max_prob_diff:.3g} (below "
        f"{10.0**-decimals:g}); test accuracy {test_acc:.4f}"
    )


if __name__ == "__main__":
    main()
