"""Outputs are written under a temporary name and renamed: a writer killed or failing halfway
leaves the old file whole, never a torn one that a later stage would read."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from imgclf.atomic import write_csv, write_json
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
