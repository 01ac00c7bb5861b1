"""Project errors. The CLI turns each into a one-line message on stderr and an exit code, never a traceback."""

from __future__ import annotations

import re
import unicodedata


# A message quoting a pasted blob stays readable: its middle is cut beyond this many characters.
MAX_MESSAGE_CHARS = 2000


def one_line(text: str) -> str:
    """``text`` with every control character (newline, tab, terminal escape, ...) written as its escape, so a
    message quoting a user's value stays one line and cannot drive the terminal; very long ones are cut."""
    if not text.isprintable():
        text = "".join(
            ch if ch == " " or unicodedata.category(ch)[0] not in "CZ"
            else ch.encode("unicode_escape").decode("ascii")
            for ch in text)
    if len(text) > MAX_MESSAGE_CHARS:
        keep = MAX_MESSAGE_CHARS // 2
        text = f"{text[:keep]} [... {len(text) - 2 * keep} characters cut ...] {text[-keep:]}"
    return text


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" when it has none): what a one-line error quotes of it."""
    text = str(exc)
    return text.splitlines()[0] if text else ""


def tensorflow_reason(message: str) -> str:
    """The first line of a TensorFlow op's error without its internals (``{{function_node __wrapped__...}}``,
    ``[Op:FlushSummaryWriter]``): what a one-line error quotes of it."""
    text = message.splitlines()[0] if message else ""
    text = re.sub(r"\s*\{\{[^}]*\}\}", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\]", "", text).strip()


def reason(exc: BaseException) -> str:
    """What a one-line error quotes of an exception: its first line, or its type's name when it has none."""
    return first_line(exc) or type(exc).__name__


class RdpgError(Exception):
    """Bad input from the user: a one-line message, exit code 2."""

    exit_code = 2

    def __init__(self, message: str = "") -> None:
        super().__init__(one_line(str(message)))


class ConfigError(RdpgError):
    """A preset, a --set override or a command-line value is invalid. ``keys``: the settings it is about, where
    the message's first word names only one of them (``config.key_locator`` names the --set of each)."""

    def __init__(self, message: str = "", keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.keys = keys


class EnvironmentSetupError(RdpgError):
    """The environment cannot be made or does not fit the preset."""


class MissingSimulator(EnvironmentSetupError):
    """A package the environment needs (its simulator: an rdpg extra) is not installed."""


class CheckpointError(RdpgError):
    """A checkpoint is missing, damaged, or not an rdpg checkpoint."""


class ExportError(RdpgError):
    """An export cannot be written or an exported artifact cannot be read."""


class TrainingFault(RdpgError):
    """Training had to stop (non-finite values, a failing environment, a full disk); the last good
    checkpoint is kept. Exit code 1: the input was fine, the run was not."""

    exit_code = 1


class PolicyFault(TrainingFault):
    """The policy itself failed in an evaluation (a non-finite action: its weights diverged), as opposed to
    the environment it was evaluated in: a checkpoint of this state would not be a good one."""
