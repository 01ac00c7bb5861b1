"""Policy export (issue 5): not written yet."""

from __future__ import annotations

from rdpg_cli.errors import ExportError


def run_export(checkpoint, format_, output, force, console) -> None:
    raise ExportError("rdpg export is not implemented yet")


def load_exported_policy(path):
    raise ExportError(f"{path}: evaluating exported policies is not implemented yet")
