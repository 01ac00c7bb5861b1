"""Project errors. The CLI turns each into a one-line message on stderr and an exit code, never a traceback."""

from __future__ import annotations


class RdpgError(Exception):
    """Bad input from the user: a one-line message, exit code 2."""

    exit_code = 2


class ConfigError(RdpgError):
    """A preset, a --set override or a command-line value is invalid."""


class EnvironmentSetupError(RdpgError):
    """The environment cannot be made or does not fit the preset."""


class CheckpointError(RdpgError):
    """A checkpoint is missing, damaged, or not an rdpg checkpoint."""


class ExportError(RdpgError):
    """An export cannot be written or an exported artifact cannot be read."""


class TrainingFault(RdpgError):
    """Training had to stop (non-finite values, a failing environment, a full disk); the last good
    checkpoint is kept. Exit code 1: the input was fine, the run was not."""

    exit_code = 1
