"""What the documentation names exists: each project file it points to, each parameter, and each
option of each command it tells a reader to run. A file renamed, a key removed or an option
renamed without its documentation fails here, not in a reader's terminal. And the demo's
figures the README gives are the committed metrics."""

from __future__ import annotations

import importlib
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgclf.config import read_yaml
from tests.conftest import ROOT, parser_of

DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "bench/results").rglob("*.md")),
    *sorted((ROOT / "bench/profiles").glob("*.yaml")),
    ROOT / "params.yaml",
]
SOURCE_FOLDERS = ("imgclf", "bench", "tests", "stages", "scripts", ".ci")
PLACEHOLDERS = re.compile(r"[<>*]|\b(WORK|DIR|OUT|FILE)\b")
# Tools whose command line is not argparse's: fingerprint takes nothing, mkl_vm_calls a command.
NO_OPTIONS = {"bench.fingerprint"}
WRAPS_A_COMMAND = {"bench.mkl_vm_calls"}
MODELS = {"scratch", "transfer", "ensemble"}  # metrics' sections, beside params.yaml's
FILE_TYPES = "py|npy|json|csv|md|yaml|lock|pt|onnx|png|txt"
MISSPELT_ON_PURPOSE = {"train.lrr"}  # the README's example of the error a misspelt key gets


def code_spans() -> Iterator[tuple[Path, str]]:
    """Each inline code span and each line of a fenced block, its line breaks made spaces."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        fenced = re.findall(r"^```\w*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
        for block in fenced:
            for line in block.replace("\\\n", " ").splitlines():
                yield doc, line.split(" #")[0].strip()
        unfenced = re.sub(r"^```\w*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        for span in re.findall(r"`([^`]+)`", unfenced):
            yield doc, " ".join(span.split())


def named_paths() -> Iterator[tuple[Path, str]]:
    folders = "|".join(re.escape(folder) for folder in SOURCE_FOLDERS)
    for doc, span in code_spans():
        for match in re.finditer(rf"(?<![\w./-])((?:{folders})/[\w./-]*\w)", span):
            if not PLACEHOLDERS.search(match[1]):
                yield doc, match[1]


def read_params_keys() -> set[str]:
    """params.yaml's keys as a reader writes them: `train.lr`."""
    params = read_yaml(ROOT / "params.yaml")
    return {
        f"{section}.{key}"
        for section, values in params.items()
        if isinstance(values, dict)
        for key in values
    }


def known_keys() -> set[str]:
    """params.yaml's keys, and the metrics' (`scratch.test_acc`), which look alike."""
    keys = read_params_keys()
    for metrics in (ROOT / "metrics").glob("*.json"):
        for section, values in json.loads(metrics.read_text()).items():
            if isinstance(values, dict):
                keys |= {f"{section}.{key}" for key in values}
    return keys


def documented_commands() -> Iterator[tuple[Path, str, list[str]]]:
    """Each `python bench/x.py ...`, `python scripts/x.py ...` or `python -m imgclf.x ...` the
    documents give: the document, the tool's module and the words after it."""
    tool = r"python3? (?:-m )?((?:bench|scripts)/\w+\.py|(?:imgclf|bench)\.\w+)"
    for doc, span in code_spans():
        for match in re.finditer(rf"(?:^|[;&|(] *){tool}(.*)", span):
            module = match[1].removesuffix(".py").replace("/", ".")
            words = shlex.split(re.split(r"[;|]|&&|>|\)", match[2])[0], posix=True)
            yield doc, module, words


def test_every_project_file_the_documents_name_exists() -> None:
    missing = {(doc.name, path) for doc, path in named_paths() if not (ROOT / path).exists()}
    assert not missing, f"named but not in the project: {sorted(missing)}"


def test_the_documents_name_source_files_at_all() -> None:
    """The test above reads what it is meant to (a broken pattern would find nothing)."""
    named = {path for _, path in named_paths()}
    assert {"imgclf/runtime.py", "bench/run.py", "tests/conftest.py"} <= named


def test_every_parameter_the_documents_name_is_in_params_yaml() -> None:
    keys = known_keys()
    sections = "|".join(sorted({key.split(".")[0] for key in read_params_keys()} | MODELS))
    # a key, not a file name (`prepare.py`) nor a call in quoted code (`data.indices("val")`)
    pattern = re.compile(
        rf"(?<![\w./-])((?:{sections})\.(?!(?:{FILE_TYPES})\b)[a-z_0-9]+)\b(?![.(/])"
    )
    unknown = {
        (doc.name, match[1])
        for doc, span in code_spans()
        for match in pattern.finditer(span)
        if match[1] not in keys | MISSPELT_ON_PURPOSE
    }
    assert not unknown, f"not in params.yaml (nor a metric): {sorted(unknown)}"


def test_every_command_the_documents_give_uses_options_its_tool_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands = list(documented_commands())
    assert len(commands) > 50, "the pattern for commands found next to nothing"
    options: dict[str, set[str]] = {}
    wrong = set()
    for doc, module, words in commands:
        if module in WRAPS_A_COMMAND:
            continue
        if module not in options:
            main = importlib.import_module(module).main
            options[module] = (
                set()
                if module in NO_OPTIONS
                else {o for a in parser_of(main, monkeypatch)._actions for o in a.option_strings}
            )
        for word in words:
            option = word.split("=")[0]
            if option.startswith("--") and option not in options[module]:
                wrong.add((doc.name, module, option))
    assert not wrong, f"options the tools do not have: {sorted(wrong)}"


def test_the_demos_figures_in_the_readme_are_the_committed_metrics() -> None:
    """The committed metrics change whenever a change moves the last bits of the weights
    (e33f373 did); the README's figures of the demo must move with them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The demo's results")[1].split("\n## ")[0]
    text = " ".join(section.split())
    evaluate = json.loads((ROOT / "metrics/evaluate.json").read_text())
    percent = {model: f"{100 * scores['test_acc']:.1f} %" for model, scores in evaluate.items()}
    for model, figure in percent.items():
        assert re.search(rf"\b{model}\b[^%]*? {re.escape(figure)}", text), (model, figure)
    submitted = json.loads((ROOT / "metrics/submission.json").read_text())["submission"]
    assert f"scores {100 * submitted['acc']:.1f} % against" in text
    scratch, transfer = (f"{100 * evaluate[m]['test_acc']:.1f}" for m in ("scratch", "transfer"))
    seeds = "the demo's committed run, seed 0, now scores"  # Experiments, the seed sweep
    assert f"{seeds} {scratch} and {transfer} %" in " ".join(readme.split())
