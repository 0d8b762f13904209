"""`python -m imgclf.classify` with tiny models made here: damaged or older model files, odd
file names and options, a reader that stops early. Run as a user runs it, from the project."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from imgclf import checkpoint
from imgclf.config import Params
from imgclf.inference import load_model
from imgclf.models import build_model
from tests.conftest import ROOT, run

CLASSES = ["red", "green", "blue"]
SIZE = 32
COMMAND = [sys.executable, "-m", "imgclf.classify"]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """An .onnx model with its card: the mean of each colour channel as that class's logit."""
    pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["logits"]),
        ],
        "mean_colour",
        [pixels],
        [logits],
    )
    path = tmp_path / "models/export/tiny.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    card = {
        "classes": CLASSES,
        "image_size": SIZE,
        "runtime": {"cpu_threads": 1, "deterministic": True},
    }
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


@pytest.fixture
def save_checkpoint(tmp_path: Path, make_params: Callable[..., Params]) -> Callable[..., Path]:
    """Save a tiny scratch network as the training stages do, its saved train section changed
    by `change` (to make one saved by an older version of the pipeline)."""

    def save(change: Callable[[dict], None] = lambda train: None) -> Path:
        train = make_params(train__cpu_threads=1).train.model_dump()
        change(train)
        architecture = {"kind": "scratch", "arch": "resnet", "num_classes": 3, "image_size": SIZE}
        path = tmp_path / "models/tiny.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.save(
            path,
            {
                "model": build_model(**architecture, width=4).state_dict(),
                "architecture": {**architecture, "width": 4},
                "classes": CLASSES,
                "provenance": {"params": {"image_size": SIZE, "train": train}},
            },
        )
        return path

    return save


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, colour in zip(("a.png", "b.png", "c.png"), ("red", "green", "blue"), strict=True):
        Image.new("RGB", (SIZE, SIZE), colour).save(folder / name)
    return folder


def classify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run([*COMMAND, *map(str, args)], ROOT, check=False)


def rows_of(csv_file: Path) -> list[dict[str, str]]:
    with open(csv_file, newline="", errors="surrogateescape") as file:
        return list(csv.DictReader(file))


def test_a_checkpoint_saved_before_a_training_parameter_was_added_still_labels(
    save_checkpoint: Callable[..., Path], photos: Path, tmp_path: Path
) -> None:
    older = save_checkpoint(lambda train: train.pop("ema_warmup"))
    result = classify(older, photos, "--out", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert len(rows_of(tmp_path / "out.csv")) == 3


def test_a_checkpoint_file_is_read_once(
    save_checkpoint: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its settings and its model come from one read (the demo's transfer.pt is 14 MB)."""
    reads: list[Path] = []
    real_load = checkpoint.load

    def counted_load(path: Path) -> dict:
        reads.append(path)
        return real_load(path)

    monkeypatch.setattr(checkpoint, "load", counted_load)
    path = save_checkpoint()
    loaded = load_model(path, threads=1)
    assert loaded.classes == CLASSES
    assert reads == [path]


def test_a_file_name_that_is_not_utf8_keeps_its_bytes_in_the_csv(
    export: Path, photos: Path, tmp_path: Path
) -> None:
    name = os.fsdecode(b"caf\xe9.png")
    Image.new("RGB", (SIZE, SIZE), "red").save(photos / name)
    result = classify(export, photos / name, "--out", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert b"caf\xe9.png,red," in (tmp_path / "out.csv").read_bytes()


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def text_instead(path: Path) -> None:
    path.write_text("weights\n")


def card_not_json(onnx_file: Path) -> None:
    onnx_file.with_suffix(".json").write_text("{")


def plain_state_dict(path: Path) -> None:
    torch.save(checkpoint.load(path)["model"], path)


@pytest.mark.parametrize(
    ("model", "damage", "named", "words"),
    [
        ("onnx", cut_short, "models/export/tiny.onnx", "not a usable export"),
        ("onnx", card_not_json, "models/export/tiny.json", "not a usable model card"),
        ("pt", cut_short, "models/tiny.pt", "not a usable checkpoint"),
        ("pt", text_instead, "models/tiny.pt", "not a usable checkpoint"),
        ("pt", plain_state_dict, "models/tiny.pt", "not a usable checkpoint"),
    ],
    ids=["onnx cut short", "card not JSON", "pt cut short", "text as pt", "plain state dict"],
)
def test_a_damaged_model_stops_with_one_line_naming_the_file(
    export: Path,
    save_checkpoint: Callable[..., Path],
    photos: Path,
    tmp_path: Path,
    model: str,
    damage: Callable[[Path], None],
    named: str,
    words: str,
) -> None:
    path = export if model == "onnx" else save_checkpoint()
    damage(path)
    result = classify(path, photos)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {tmp_path / named}: {words} of this pipeline")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_out_naming_a_folder_is_refused_before_any_work(export: Path, photos: Path) -> None:
    result = classify(export, photos, "--out", photos)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: --out {photos} is a folder: name the CSV file to write"


def test_a_reader_that_stops_early_ends_the_command_quietly(export: Path, photos: Path) -> None:
    command = [*COMMAND, str(export), str(photos)]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout and process.stderr
        process.stdout.close()  # as `| head` does, before the command writes its first row
        stderr = process.stderr.read()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_a_file_over_max_pixels_is_skipped_naming_the_option(export: Path, photos: Path) -> None:
    result = classify(export, photos / "a.png", photos / "b.png", "--max-pixels", "100")
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2
    for line in skipped:
        assert f"{SIZE} x {SIZE} pixels is over --max-pixels (100)" in line, line


def test_a_file_named_twice_gets_one_row(export: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = classify(export, photos, photos / "b.png", f"{photos}/../photos/a.png", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(Path(row["file"]).name for row in rows_of(out)) == ["a.png", "b.png", "c.png"]


@pytest.mark.parametrize("key", ["provenance", "model", "architecture", "classes"])
def test_a_checkpoint_without_a_part_it_needs_stops_with_one_line_naming_it(
    save_checkpoint: Callable[..., Path], photos: Path, key: str
) -> None:
    path = save_checkpoint()
    saved = checkpoint.load(path)
    del saved[key]
    checkpoint.save(path, saved)
    result = classify(path, photos)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: {path}: not a usable checkpoint of this pipeline (it has no '{key}');"
    )
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            lambda saved: saved["architecture"].update(depth=7),
            "unexpected keyword argument 'depth'",
        ),
        (lambda saved: saved["model"].popitem(), "Error(s) in loading state_dict"),
    ],
    ids=["architecture", "weights"],
)
def test_a_checkpoint_whose_network_does_not_fit_stops_with_one_line(
    save_checkpoint: Callable[..., Path],
    photos: Path,
    damage: Callable[[dict], object],
    reason: str,
) -> None:
    path = save_checkpoint()
    saved = checkpoint.load(path)
    damage(saved)
    checkpoint.save(path, saved)
    result = classify(path, photos)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {path}: not a usable checkpoint of this pipeline ("), (
        result.stderr
    )
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def bound_by_file_permissions() -> list[str]:
    """What runs a command so that a file's permissions bind it: root reads any file unless
    it gives up the two capabilities that let it (setpriv, of util-linux)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("run as root, and no setpriv to give up reading every file")
    capabilities = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={capabilities}", f"--bounding-set={capabilities}"]


@pytest.mark.parametrize(
    ("model", "locked"),
    [
        ("pt", "models/tiny.pt"),
        ("onnx", "models/export/tiny.onnx"),
        ("onnx", "models/export/tiny.json"),
    ],
    ids=["pt", "onnx", "card"],
)
def test_a_model_file_that_cannot_be_read_is_named_as_unreadable(
    export: Path,
    save_checkpoint: Callable[..., Path],
    photos: Path,
    tmp_path: Path,
    model: str,
    locked: str,
) -> None:
    path = export if model == "onnx" else save_checkpoint()
    (tmp_path / locked).chmod(0)
    command = [*bound_by_file_permissions(), *COMMAND, str(path), str(photos)]
    result = run(command, ROOT, check=False)
    assert result.returncode == 1
    expected = f"error: {tmp_path / locked}: cannot be read (Permission denied)"
    assert result.stderr.strip() == expected


def test_sigterm_while_writing_keeps_the_old_csv_and_leaves_no_temporary_file(
    export: Path, tmp_path: Path
) -> None:
    # 400 large images, each a link to one file: seconds of decoding, made in no time.
    folder = tmp_path / "large"
    folder.mkdir()
    Image.new("RGB", (2000, 2000), "red").save(folder / "0.png")
    for number in range(1, 400):
        os.link(folder / "0.png", folder / f"{number}.png")
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    command = [*COMMAND, str(export), str(folder), "--out", str(out)]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("*.tmp")):  # the temporary CSV is open
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # into the writing (seconds of it), past the file's creation
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
    assert [file.name for file in tmp_path.iterdir() if file.suffix == ".tmp"] == []
    assert out.read_text() == "old\n"
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert b"Traceback" not in stderr, stderr
