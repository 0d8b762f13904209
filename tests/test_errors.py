"""A command's failure reaches the user as one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imgclf.errors import exit_on_user_error


def test_a_failed_command_it_ran_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    @exit_on_user_error
    def main() -> None:
        subprocess.run([sys.executable, "-c", "raise SystemExit(3)"], check=True)

    with pytest.raises(SystemExit) as exit_status:
        main()
    assert exit_status.value.code == 1
    assert capsys.readouterr().err == (
        f"error: `{sys.executable} -c raise SystemExit(3)` failed (exit status 3); why is above\n"
    )
