"""scan: which files of a data folder are candidates, rejected, or skipped quietly."""

from __future__ import annotations

from pathlib import Path

from imgclf.layout import scan
from tests.dirty import write_data_set


def test_windows_folder_files_are_skipped_like_hidden_ones(tmp_path: Path, make_params) -> None:
    root = write_data_set(tmp_path / "photos", {"train/cats": 1, "train/dogs": 1})
    for name in ("train/desktop.ini", "train/cats/Thumbs.db", "train/dogs/Desktop.ini"):
        (root / name).write_bytes(b"[.ShellClassInfo]")
    (root / "train/dogs/.DS_Store").write_bytes(b"\x00")
    found = scan(make_params(data__root=str(root)).data)
    assert found.rejected == [] and found.hidden == 4
    assert len(found.candidates) == 2
