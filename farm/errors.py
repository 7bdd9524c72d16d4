"""User-facing errors and the exit-code-2 contract of every command-line entry point.

A :class:`UserError` is bad input a person can fix (a wrong inventory field, an
unknown device, a bad line in an arch file). Its message is one line that
names the file, the field, what is wrong and what to do. Entry points wrap
``main`` with :func:`exit_on_user_error`, which fixes how every command ends:

* a :class:`UserError` prints that line to stderr and exits 2, without a traceback;
* Ctrl-C (:class:`KeyboardInterrupt`) prints one line and exits 130 (128 + SIGINT);
  a command that can say more (``measure.py``: rows stored, a re-run resumes)
  raises :class:`Interrupted` with that line instead;
* a closed stdout pipe (``farm status | head``) ends the command quietly with
  exit 141 (128 + SIGPIPE), as ``cat`` would.

Any other exception is a bug and keeps its traceback.

Example:
    >>> @exit_on_user_error
    ... def main() -> int:
    ...     raise UserError("inventory.yaml: device 'pi': field 'threads': must be >= 1")
    >>> try:
    ...     main()
    ... except SystemExit as exit_:
    ...     exit_.code
    2
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, TypeVar

__all__ = [
    "BROKEN_PIPE_EXIT_CODE",
    "INTERRUPTED_EXIT_CODE",
    "Interrupted",
    "USER_ERROR_EXIT_CODE",
    "UserError",
    "exit_on_user_error",
    "report_user_error",
]

USER_ERROR_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130
BROKEN_PIPE_EXIT_CODE = 141

_Result = TypeVar("_Result")


class UserError(Exception):
    """Bad input a person can fix. ``str(error)`` is the whole one-line message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Interrupted(Exception):
    """Ctrl-C, with the one line a command wants to say about it (e.g. how many rows were stored)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def report_user_error(error: UserError, program: str | None = None) -> None:
    """Print ``error`` as one line on stderr, prefixed with the program name."""
    name = program or _program_name()
    first_line = " ".join(str(error).split("\n"))
    print(f"{name}: error: {first_line}", file=sys.stderr)


def exit_on_user_error(fn: Callable[..., _Result]) -> Callable[..., _Result]:
    """Decorate a CLI ``main``: bad input exits 2, Ctrl-C 130, a closed stdout 141; one line each, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> _Result:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe shows here, while it can still end quietly
            return result
        except UserError as error:
            report_user_error(error)
            raise SystemExit(USER_ERROR_EXIT_CODE) from None
        except Interrupted as interrupted:
            print(f"{_program_name()}: interrupted: {interrupted.message}", file=sys.stderr)
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None
        except KeyboardInterrupt:
            print(f"{_program_name()}: interrupted", file=sys.stderr)
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None
        except BrokenPipeError:
            _silence_stdout()
            raise SystemExit(BROKEN_PIPE_EXIT_CODE) from None

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


def _program_name() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "latfarm"
    return argv0.replace("\\", "/").rsplit("/", 1)[-1]
