"""The one exception a user should see as a message, not a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class UserError(Exception):
    """Bad input or parameters, or a full disk: the message names the cause and what to do."""


def exit_on_user_error(main: Callable[[], None]) -> Callable[[], None]:
    """Run a stage's `main`, turning a UserError into one line on stderr and exit status 1."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)

    return wrapper
