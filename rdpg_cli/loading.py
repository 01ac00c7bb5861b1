"""Load something to act with: a checkpoint (or run folder), or an exported policy artifact."""

from __future__ import annotations

import shlex
from pathlib import Path

from rdpg_cli.config import Config
from rdpg_cli.errors import CheckpointError


def require_existing(path: Path, what: str = "") -> None:
    """A one-line CheckpointError unless ``path`` exists ("PATH: [what ]not found"): checked before TensorFlow
    loads (seconds)."""
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise CheckpointError(f"{path}: cannot use it ({getattr(exc, 'strerror', None) or exc})") from None
    if not exists:
        raise CheckpointError(f"{path}: {what + ' ' if what else ''}not found")


def load_policy(path: Path) -> tuple[Config, object, str]:
    """-> (config, policy with reset()/act(), label). Exports are recognised by their shape on disk."""
    path = Path(path)
    require_existing(path)
    if path.is_dir() and not (path / "checkpoint.h5").exists():
        if (path / "saved_model.pb").exists():
            from rdpg_cli.export import load_exported_policy

            return load_exported_policy(path)
        best = path / "best.h5"
        hint = f"; its best.h5 holds the best evaluated policy: rdpg evaluate {shlex.quote(str(best))}" \
            if best.is_file() else ""
        raise CheckpointError(f"{path}: a folder with no checkpoint.h5 (and not a SavedModel){hint}")
    if path.is_file() and path.suffix.lower() in (".tflite", ".onnx", ".keras"):
        from rdpg_cli.export import load_exported_policy

        return load_exported_policy(path)
    from rdpg_cli.checkpoint import find_checkpoint
    from rdpg_cli.policy import AgentPolicy, load_agent

    checkpoint = find_checkpoint(path)
    config, agent, _ = load_agent(checkpoint)
    return config, AgentPolicy(agent), str(checkpoint)
