"""Ways to combine the two trained models, each fitted on the validation split and scored on
test, so the choice is made without looking at test:

- the mean of the probabilities (evaluate's `ensemble` with evaluate.ensemble_weights: equal);
- the weighted mean, the weights fitted on validation (ensemble_weights: fitted);
- the mean of the log-probabilities;
- each model's temperature fitted on validation, then the mean of the probabilities;
- stacking: a multinomial logistic regression from both models' log-probabilities to the
  class, fitted on validation (scikit-learn, its default regularisation), which can learn
  that one model is the better judge of some classes.

A last row gives the share of images where at least one model's first choice is right: a
rule that always picks one of the two answers cannot score above it, so it says whether a
target is within the pair's reach. A mean passes it only on images where neither model ranks
the right class first; stacking, a classifier of its own, can pass it more often (on
models near chance, as in the tests).

    python bench/ensemble.py --project WORK/project [--experiments NAME ...]
    python bench/ensemble.py --projects WORK1/project WORK2/project ...

WORK is a `bench/run.py --work WORK` folder (or any project whose models are trained). With
--experiments, the models of those DVC experiments of the project (each applied in turn, so
the workspace ends on the last) are pooled instead; with --projects, those of several such
folders (one `bench/run.py` per seed, say). Pooled: each distinct model alone, the mean of
the probabilities of all transfer models, of all scratch models, and of all models, on test
(the validation split depends on the seed: nothing is fitted), the share that at least one
gets right, and the images every model gets wrong.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/ensemble.py`

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from bench.workspace import check_project, project_folder, run_dvc, tool_parser
from imgclf import paths
from imgclf.cache import ImageCache
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.evaluate import fit_weights, load_trained, split_logits
from imgclf.models import equal_weights, mean_probability_logits
from imgclf.samples import load_split_data

TEMPERATURES = np.geomspace(0.25, 4, 41)
ORACLE_ROW = "either model's first choice right (the most a choice between them reaches)"

Logits = dict[str, torch.Tensor]  # per model


@exit_on_user_error
def main() -> None:
    parser = tool_parser(__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--project",
        type=project_folder,
        metavar="DIR",
        help="a project whose models are trained: a bench/run.py --work folder's project/",
    )
    where.add_argument(
        "--projects",
        nargs="+",
        type=project_folder,
        metavar="DIR",
        help="pool the models of these projects (one bench/run.py per seed, say)",
    )
    parser.add_argument(
        "--experiments",
        nargs="+",
        metavar="NAME",
        help="pool the models of these DVC experiments of --project (applied in turn)",
    )
    args = parser.parse_args()
    if args.experiments and not args.project:
        parser.error("--experiments pools experiments of one --project")
    for folder in args.projects or [args.project]:
        # an experiment applied brings its own models: the project itself needs none yet
        check_project(folder, trained=not args.experiments)
    if args.projects:
        # absolute, as entering one moves the working directory; labelled as given
        projects = {str(project): project.resolve() for project in args.projects}
        pooled(list(projects), lambda source: os.chdir(projects[source]))
        return
    os.chdir(args.project)
    if args.experiments:
        pooled(args.experiments, apply_experiment)
        return
    params = load_params().evaluate
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    logits: dict[str, Logits] = {"val": {}, "test": {}}
    for name in paths.MODEL_NAMES:
        trained = load_trained(paths.checkpoint(name))
        for split in logits:
            logits[split][name] = split_logits(trained, split, data, cache, params)
    targets = {split: torch.as_tensor(data.targets(split)) for split in logits}
    rules = combination_rules(logits["val"], targets["val"])
    print(f"| rule | fitted on val | val acc | test acc ({len(targets['test'])} images) |")
    print("|---|---|---|---|")
    for label, (fitted, combine) in rules.items():
        val, test = (accuracy(combine(logits[s]), targets[s]) for s in ("val", "test"))
        print(f"| {label} | {fitted} | {val:.2%} | {test:.2%} |")
    val, test = (either_right(logits[s], targets[s]) for s in ("val", "test"))
    print(f"| {ORACLE_ROW} | - | {val:.2%} | {test:.2%} |")


def apply_experiment(name: str) -> None:
    """Make experiment `name`'s models the project's (the working directory's)."""
    for command in (["exp", "apply", name], ["checkout", "-f"]):
        run_dvc(command, Path.cwd())


def pooled(sources: list[str], enter: Callable[[str], None]) -> None:
    """Print the table of the models of `sources` pooled (see the module's docstring), each
    source's models made the working directory's by `enter`."""
    logits, targets, classes = logits_on_test(sources, enter)
    print(f"| models | test acc ({len(targets)} images) |\n|---|---|")
    for label, each in logits.items():
        print(f"| {label} | {accuracy(each, targets):.2%} |")
    for kind in paths.MODEL_NAMES:
        chosen = {label: each for label, each in logits.items() if label.endswith(kind)}
        print(f"| mean of the {len(chosen)} {kind} models | "
              f"{accuracy(mean_probability(chosen), targets):.2%} |")  # fmt: skip
    print(f"| mean of all {len(logits)} | {accuracy(mean_probability(logits), targets):.2%} |")
    print(f"| at least one model right | {either_right(logits, targets):.2%} |")
    predicted = torch.stack([each.argmax(1) for each in logits.values()])
    all_wrong = (predicted != targets).all(0).nonzero().flatten().tolist()
    pairs = Counter(
        (classes[targets[i]], classes[predicted[:, i].mode().values]) for i in all_wrong
    )
    print(f"\nWrong by every model: {len(all_wrong)} images (true -> most predicted: "
          + ", ".join(f"{a} -> {b} {n}" for (a, b), n in pairs.most_common()) + ")")  # fmt: skip


def logits_on_test(
    sources: list[str], enter: Callable[[str], None]
) -> tuple[Logits, torch.Tensor, list[str]]:
    """Test logits of each distinct model of `sources` ("<source> <model>"), each source
    entered in turn; the test labels and the class names, which must be the same in every
    source (the seed moves only train and val)."""
    logits: Logits = {}
    seen: set[str] = set()
    targets: torch.Tensor | None = None
    for source in sources:
        enter(source)
        params = load_params().evaluate
        data = load_split_data(paths.MANIFEST, paths.SPLIT)
        cache = ImageCache(paths.CACHE)
        tested = torch.as_tensor(data.targets("test"))
        if targets is not None and not torch.equal(tested, targets):
            raise SystemExit(f"{source} tests on other images: pool only runs of the same "
                             "data")  # fmt: skip
        targets = tested
        for name in paths.MODEL_NAMES:
            digest = hashlib.sha256(paths.checkpoint(name).read_bytes()).hexdigest()
            if digest not in seen:  # a variant that left a model as it was shares it
                seen.add(digest)
                trained = load_trained(paths.checkpoint(name))
                logits[f"{source} {name}"] = split_logits(trained, "test", data, cache, params)
    assert targets is not None  # argparse requires one source at least
    return logits, targets, data.classes


def combination_rules(
    val: Logits, targets: torch.Tensor
) -> dict[str, tuple[str, Callable[[Logits], torch.Tensor]]]:
    weights = fit_weights(list(val.values()), targets.numpy())
    temperature = {
        name: min(TEMPERATURES, key=lambda t: loss(each / t, targets)) for name, each in val.items()
    }

    def tempered(logits: Logits) -> torch.Tensor:
        return mean_probability({name: each / temperature[name] for name, each in logits.items()})

    stacking = LogisticRegression(max_iter=1000).fit(stacked_features(val), targets.numpy())
    num_classes = next(iter(val.values())).shape[1]

    def stacked(logits: Logits) -> torch.Tensor:
        features = stacked_features(logits)
        scores = np.full((len(features), num_classes), -np.inf)  # a class val lacks: never
        scores[:, stacking.classes_] = stacking.predict_log_proba(features)
        return torch.as_tensor(scores)

    fitted_temperatures = ", ".join(f"{name} T={t:.2f}" for name, t in temperature.items())
    return {
        "scratch alone": ("-", lambda logits: logits["scratch"]),
        "transfer alone": ("-", lambda logits: logits["transfer"]),
        "mean of probabilities": ("-", mean_probability),
        "mean of log-probabilities": ("-", mean_log_probability),
        "weighted mean of probabilities": (
            ", ".join(f"{name} {w:.2f}" for name, w in zip(val, weights, strict=True)),
            lambda logits: mean_probability_logits(list(logits.values()), weights),
        ),
        "tempered mean of probabilities": (fitted_temperatures, tempered),
        "stacking: logistic regression on both log-probabilities": (
            f"{stacking.coef_.size + stacking.intercept_.size} coefficients",
            stacked,
        ),
    }


def stacked_features(logits: Logits) -> np.ndarray:
    return torch.cat([each.log_softmax(1) for each in logits.values()], 1).double().numpy()


def mean_probability(logits: Logits) -> torch.Tensor:
    return mean_probability_logits(list(logits.values()), equal_weights(len(logits)))


def mean_log_probability(logits: Logits) -> torch.Tensor:
    return torch.stack([each.log_softmax(1) for each in logits.values()]).mean(0)


def either_right(logits: Logits, targets: torch.Tensor) -> float:
    right = torch.stack([each.argmax(1) == targets for each in logits.values()])
    return right.any(0).double().mean().item()


def loss(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return F.cross_entropy(logits, targets).item()


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return (logits.argmax(1) == targets).double().mean().item()


if __name__ == "__main__":
    main()
