"""How to install one of rdpg's optional extras (pyproject.toml's ``[project.optional-dependencies]``)."""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The command that installs ``extra``. rdpg is installed from its source folder (the README's quick start:
    ``pip install .``), not from a package index, so the extra is named on that folder."""
    return f"pip install '.[{extra}]' in rdpg's source folder"
