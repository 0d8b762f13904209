"""Label every predict/ image with the chosen model and write the submission CSV."""

from imgclf import paths
from imgclf.atomic import write_csv, write_json
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import ENSEMBLE, ensemble_weights, load_trained, predict
from imgclf.models import mean_probability_logits
from imgclf.runtime import pin_cpu_arithmetic
from imgclf.samples import load_split_data, read_manifest
from imgclf.submission import choose_model, labels_file, score_against, submission_id
from imgclf.wording import counted


@exit_on_user_error
def main() -> None:
    params = load_params()
    pin_cpu_arithmetic(params.train)
    options = params.submission
    truth = labels_file(params.data, options)
    trained = {name: load_trained(paths.checkpoint(name)) for name in paths.MODEL_NAMES}
    chosen = choose_model(options.model, {n: t.meta["val_acc"] for n, t in trained.items()})
    samples = [s for s in read_manifest(paths.MANIFEST) if s.source == "predict"]
    rows: list[tuple[str, str]] = []
    if samples:
        cache, rows_of = ImageCache(paths.CACHE), [s.index for s in samples]
        if chosen == ENSEMBLE:
            data = load_split_data(paths.MANIFEST, paths.SPLIT)
            voters, weights = trained, ensemble_weights(trained, params.evaluate, data, cache)
        else:
            voters, weights = {chosen: trained[chosen]}, (1.0,)
        batch_size, tta_flip = params.evaluate.batch_size, params.evaluate.tta_flip
        logits = mean_probability_logits(
            [predict(each, cache, rows_of, batch_size, tta_flip) for each in voters.values()],
            weights,
        )
        classes = next(iter(voters.values())).meta["classes"]
        rows = [
            (submission_id(s, options.id_from), classes[i])
            for s, i in zip(samples, logits.argmax(1).tolist(), strict=True)
        ]
    else:
        print(
            f"warning: no images in {params.data.root}/{params.data.predict_dir}: "
            f"{paths.SUBMISSION} has a header and no rows, and nothing is scored"
        )
    write_csv(paths.SUBMISSION, [options.id_column, options.label_column], rows)
    metrics: dict[str, str | int | float | bool] = {"model": chosen, "images": len(rows)}
    metrics["scored"] = bool(truth and rows)
    if truth and rows:
        metrics |= score_against(rows, truth, options)
        scored = counted(int(metrics["scored_images"]), "image")
        verdict = f"accuracy {metrics['acc']:.4f} on {scored} against {truth}"
    elif truth:
        verdict = "nothing to score"
    else:
        verdict = f"unscored: no labels file (submission.labels_file: {options.labels_file})"
    write_json(paths.METRICS / "submission.json", {"submission": metrics})
    print(
        f"make_submission: {counted(len(rows), 'row')} by the {chosen} model in "
        f"{paths.SUBMISSION}; {verdict}"
    )


if __name__ == "__main__":
    main()
