"""Label every predict/ image with the chosen model and write the submission CSV."""

from pathlib import Path

from imgclf import paths
from imgclf.atomic import write_csv, write_json
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import ENSEMBLE, ensemble_weights, load_trained, predict
from imgclf.models import mean_probability_logits
from imgclf.runtime import keep_freed_memory, pin_cpu_arithmetic
from imgclf.samples import load_split_data, read_manifest
from imgclf.submission import (
    check_unique_ids,
    choose_model,
    labels_file,
    rejected_predict_files,
    score_against,
    submission_id,
)
from imgclf.wording import counted, listed


@exit_on_user_error
def main() -> None:
    params = load_params()
    pin_cpu_arithmetic(params.train)
    keep_freed_memory()
    options = params.submission
    truth = labels_file(params.data, options)
    trained = {name: load_trained(paths.checkpoint(name)) for name in paths.MODEL_NAMES}
    chosen = choose_model(options.model, {n: t.meta["val_acc"] for n, t in trained.items()})
    samples = [s for s in read_manifest(paths.MANIFEST) if s.source == "predict"]
    check_unique_ids([s.path for s in samples], options.id_from)  # validate stops it first
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
            (submission_id(s.path, options.id_from), classes[i])
            for s, i in zip(samples, logits.argmax(1).tolist(), strict=True)
        ]
    else:
        print(
            f"warning: no images in {params.data.root}/{params.data.predict_dir}: "
            f"{paths.SUBMISSION} has a header and no rows, and nothing is scored"
        )
    write_csv(paths.SUBMISSION, [options.id_column, options.label_column], rows)
    metrics: dict[str, str | int | float | bool] = {"model": chosen, "images": len(rows)}
    score = score_against(rows, truth, options) if truth and rows else None
    metrics["scored"] = score is not None
    metrics |= score or {}
    write_json(paths.METRICS / "submission.json", {"submission": metrics})
    left_out = rejected_predict_files(paths.REJECTED, params.data.predict_dir)
    warn_left_out(left_out, params.data.predict_dir)
    left_out_note = f" ({counted(len(left_out), 'predict file')} left out)" if left_out else ""
    print(
        f"make_submission: {counted(len(rows), 'row')} by the {chosen} model in "
        f"{paths.SUBMISSION}{left_out_note}; {verdict(score, rows, truth, options.labels_file)}"
    )


def warn_left_out(left_out: list[tuple[str, str]], predict_dir: str) -> None:
    """Name the predict files prepare rejected: the submission has no row for them."""
    if not left_out:
        return
    named = listed([f"{path} ({reason})" for path, reason in left_out])
    print(
        f"warning: {counted(len(left_out), 'file')} in {predict_dir}/ left out of the "
        f"submission, which prepare rejected: {named} (all in {paths.REJECTED})"
    )


def verdict(
    score: dict[str, float | int] | None,
    rows: list[tuple[str, str]],
    truth: Path | None,
    labels_file: str | None,
) -> str:
    if score:
        scored = int(score["scored_images"])
        partly = (
            f" (the other {len(rows) - scored} rows have no label)" if scored < len(rows) else ""
        )
        return f"accuracy {score['acc']:.4f} on {counted(scored, 'image')} against {truth}{partly}"
    if truth and rows:
        return (
            f"unscored: no id of the submission (e.g. {rows[0][0]!r}) is in {truth}; see "
            "submission.id_from"
        )
    if truth:
        return "nothing to score"
    return f"unscored: no labels file (submission.labels_file: {labels_file})"


if __name__ == "__main__":
    main()
