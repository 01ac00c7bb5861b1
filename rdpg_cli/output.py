"""stdout for rdpg's results and progress, whose failures are one kind of event.

A reader that went away (``rdpg train | head``), a log file on a full disk or a failing device: each makes
stdout unwritable, and rdpg then stops printing and finishes what it was doing (``rdpg train`` writes its
checkpoint) instead of ending with a traceback or blaming the run folder for the log's disk.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StdoutFailed(Exception):
    """stdout can no longer be written: ``closed_pipe`` when its reader went away (exit status 141, as a
    command killed by SIGPIPE), otherwise the device's error (a full disk: exit status 1)."""

    def __init__(self, cause: OSError):
        self.closed_pipe = isinstance(cause, BrokenPipeError)
        super().__init__("stdout was closed (a pipe whose reader ended)" if self.closed_pipe else
                         f"stdout cannot be written ({cause.strerror or type(cause).__name__})")

    @property
    def exit_code(self) -> int:
        return 128 + signal.SIGPIPE if self.closed_pipe else 1


class GuardedStdout:
    """``sys.stdout`` (whatever it is at the moment of writing), with every write failure raised as
    StdoutFailed. Rich consoles and print() take it as their file."""

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except OSError as exc:
            raise StdoutFailed(exc) from None

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except OSError as exc:
            raise StdoutFailed(exc) from None

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: the real stream's
        return getattr(sys.stdout, name)


STDOUT = GuardedStdout()


def emit(text: str, end: str = "\n") -> None:
    """One result line on stdout (a path, JSON): plain text, no Rich markup or wrapping."""
    print(text, end=end, file=STDOUT, flush=True)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """What runs inside prints to stderr what it would print to stdout, Python's ``print`` and C code's
    writes to file descriptor 1 alike: an environment that prints must not spoil machine-readable output
    (``rdpg evaluate --json``). Where fd 1 cannot be redirected, Python's prints still are."""
    _flush(sys.stdout)
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError):
        saved = None
    previous, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        _flush(sys.stderr)
        sys.stdout = previous
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _flush(stream: Any) -> None:
    try:
        stream.flush()
    except (OSError, ValueError, AttributeError):
        pass


def silence_stdout() -> None:
    """Point fd 1 at /dev/null, so that Python's flush of stdout at exit cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def open_closed_standard_streams() -> None:
    """A standard stream that was closed when rdpg started (``rdpg train >&-``, a service manager that gives
    none) becomes /dev/null: what would go there is dropped, as Python's own ``print`` drops it (Python
    leaves ``sys.stdout`` None then, and every write was an AttributeError traceback). Its file descriptor
    is held open too, so that no file rdpg opens later (a checkpoint) takes its number and receives what
    a C library writes to fd 1 or 2."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:  # closed: in order 0, 1, 2, so os.open takes the lowest free number, this one
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
        setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8", errors="replace"))


def tolerant_encoding() -> None:
    """A character the terminal's encoding lacks (``±`` on an ASCII locale) prints as ``?`` instead of
    ending the command with a UnicodeEncodeError (and, mid-training, without its last metrics row)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (OSError, ValueError):
                pass


def sane_columns() -> None:
    """Drop a COLUMNS that Rich and Typer would take literally: 0 printed nothing at all (results lost), a
    width of millions padded ``rdpg --help`` to gigabytes. Without it they ask the terminal, or use 80."""
    value = os.environ.get("COLUMNS")
    if value is not None and not (value.isdigit() and 1 <= int(value) <= 10_000):
        del os.environ["COLUMNS"]
