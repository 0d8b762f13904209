"""Outputs are written under a temporary name and renamed: a writer killed or failing halfway
leaves the old file whole, never a torn one that a later stage would read."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from imgclf.atomic import atomic_path, write_csv, write_json
from imgclf.errors import exit_on_user_error
from tests.conftest import ROOT


def test_a_writer_killed_halfway_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "manifest.csv"
    write_csv(target, ["index"], [[0], [1]])
    before = target.read_bytes()
    writer = textwrap.dedent(
        """
        import sys, time
        from imgclf.atomic import write_csv

        def rows():
            yield from ([i] for i in range(100_000))
            print("halfway", flush=True)
            time.sleep(60)
            yield [-1]

        write_csv(sys.argv[1], ["index"], rows())
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", writer, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "halfway\n"
        assert len(list(tmp_path.iterdir())) == 2  # the old file and the half-written one
    finally:
        process.kill()
        process.wait()
    assert target.read_bytes() == before


def test_a_writer_failing_halfway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"acc": 0.5})
    before = target.read_bytes()
    with pytest.raises(TypeError):
        write_json(target, {"acc": 0.9, "model": object()})  # fails after writing a part
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_output_gets_the_mode_the_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    target = tmp_path / "metrics.json"
    writer = f"import os; os.umask({umask}); from imgclf.atomic import write_json; "
    writer += f"write_json({str(target)!r}, {{}})"
    subprocess.run([sys.executable, "-c", writer], cwd=ROOT, check=True)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def write_bytes(path: Path) -> None:
    path.write_bytes(bytes(1 << 16))


def save_weights(path: Path) -> None:
    with open(path, "wb") as file:  # as imgclf.checkpoint.save does
        torch.save({"weight": torch.zeros(1 << 14)}, file)


@pytest.mark.parametrize("write", [write_bytes, save_weights])
def test_a_full_disk_is_one_line_that_names_the_file_and_leaves_the_old_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write: Callable[[Path], None]
) -> None:
    target = tmp_path / "transfer.pt"
    target.write_bytes(b"the last epoch's checkpoint")

    @exit_on_user_error
    def stage() -> None:
        with atomic_path(target) as tmp:
            tmp.unlink()
            tmp.symlink_to("/dev/full")  # every write to it fails as on a full disk: ENOSPC
            write(tmp)

    with pytest.raises(SystemExit) as exit_status:
        stage()
    assert exit_status.value.code == 1
    message = capsys.readouterr().err
    assert message.startswith(f"error: no space left on the device for {target}")
    assert message.count("\n") == 1
    assert target.read_bytes() == b"the last epoch's checkpoint"
    assert [path.name for path in tmp_path.iterdir()] == ["transfer.pt"]
