"""The one exception a user should see as a message, not a traceback."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable


class UserError(Exception):
    """Bad input or parameters, or a full disk: the message names the cause and what to do."""


def exit_on_user_error(main: Callable[[], None]) -> Callable[[], None]:
    """Run a command's `main`, turning a UserError into one line on stderr and exit status 1;
    a command it ran that failed (and printed why, above) into one line naming it."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except subprocess.CalledProcessError as error:
            command = error.cmd if isinstance(error.cmd, str) else " ".join(map(str, error.cmd))
            print(
                f"error: `{command}` failed (exit status {error.returncode}); why is above",
                file=sys.stderr,
            )
            sys.exit(1)

    return wrapper
