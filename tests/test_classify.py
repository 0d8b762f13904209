"""`python -m imgclf.classify`: new images labelled by a checkpoint or its ONNX export, decoded
as the training images were; bad files listed, never a crash. Run as a user runs it."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run
from tests.dirty import KEPT, QUIET, REJECTED, make_dirty_folder, write_data_set

pytestmark = pytest.mark.slow


def classify(project: Path, *args: str) -> tuple[list[dict[str, str]], str]:
    """Run the command in `project`; the CSV's rows and what it wrote on stderr."""
    out = project.parent / "predictions.csv"
    result = run([sys.executable, "-m", "imgclf.classify", *args, "--out", str(out)], project)
    with open(out, newline="") as file:
        rows = list(csv.DictReader(file))
    out.unlink()
    return rows, result.stderr


def submitted(project: Path) -> str:
    return json.loads((project / "metrics/submission.json").read_text())["submission"]["model"]


def test_the_exported_model_reproduces_the_submission(repro_project: Path) -> None:
    onnx = f"models/export/{submitted(repro_project)}.onnx"
    rows, _ = classify(repro_project, onnx, "data/demo/predict")
    with open(repro_project / "data/submission.csv", newline="") as file:
        expected = {row["id"]: row["label"] for row in csv.DictReader(file)}
    assert len(rows) == len(expected) == 270
    assert {Path(row["file"]).stem: row["class_1"] for row in rows} == expected


def test_checkpoint_and_export_give_the_same_answers(repro_project: Path) -> None:
    model = submitted(repro_project)
    from_pt, _ = classify(repro_project, f"models/{model}.pt", "data/demo/predict")
    from_onnx, _ = classify(repro_project, f"models/export/{model}.onnx", "data/demo/predict")
    assert [row["file"] for row in from_pt] == [row["file"] for row in from_onnx]
    for pt, onnx in zip(from_pt, from_onnx, strict=True):
        assert [pt[f"class_{k}"] for k in (1, 2, 3)] == [onnx[f"class_{k}"] for k in (1, 2, 3)]
        for k in (1, 2, 3):
            assert abs(float(pt[f"prob_{k}"]) - float(onnx[f"prob_{k}"])) <= 1e-4


def test_bad_files_are_listed_with_their_reason_and_the_rest_labelled(
    repro_project: Path, tmp_path: Path
) -> None:
    root = make_dirty_folder(tmp_path / "photos")
    rows, stderr = classify(repro_project, "models/scratch.pt", str(root), "--top-k", "2")
    labelled = {Path(row["file"]).relative_to(root).as_posix() for row in rows}
    assert labelled == set(KEPT)
    assert set(rows[0]) == {"file", "class_1", "prob_1", "class_2", "prob_2"}
    for row in rows:
        assert float(row["prob_1"]) >= float(row["prob_2"]) >= 0.0
    for path, words in REJECTED.items():
        line = next(
            line for line in stderr.splitlines() if line.startswith(f"skipped {root}/{path}:")
        )
        assert words in line, line
    assert not labelled & QUIET
    assert f"classify: {len(KEPT)} images labelled" in stderr


def test_images_that_decode_almost_black_are_labelled_and_named_in_a_warning(
    repro_project: Path, tmp_path: Path
) -> None:
    """A 16-bit file holding 12-bit values (0 to 4095), as prepare warns of it too."""
    root = write_data_set(tmp_path / "photos", {"new": 2})
    twelve_bit = root / "new/twelve_bit.png"
    Image.fromarray(np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)).save(
        twelve_bit
    )
    rows, stderr = classify(repro_project, "models/scratch.pt", str(root))
    assert len(rows) == 3
    assert (
        f"warning: 1 image almost black (no value above 15 of 255): {twelve_bit}. A 16-bit image"
        in stderr
    )


def test_a_missing_path_stops_with_one_line(repro_project: Path) -> None:
    result = run(
        [sys.executable, "-m", "imgclf.classify", "models/scratch.pt", "no/such/folder"],
        repro_project,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no/such/folder: no such file or folder"


def test_a_missing_model_says_what_writes_one(repro_project: Path) -> None:
    command = [sys.executable, "-m", "imgclf.classify", "models/export/none.onnx", "data/demo"]
    result = run(command, repro_project, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: models/export/none.onnx: no such model file;")
    assert "`dvc repro export`" in result.stderr


def test_an_onnx_file_without_its_card_stops_with_one_line(
    repro_project: Path, tmp_path: Path
) -> None:
    lone = tmp_path / "model.onnx"
    lone.write_bytes(next((repro_project / "models/export").glob("*.onnx")).read_bytes())
    result = run(
        [sys.executable, "-m", "imgclf.classify", str(lone), "data/demo/predict"],
        repro_project,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {tmp_path / 'model.json'} not found")
