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


def locate_checkpoint(path: Path) -> Path | None:
    """The checkpoint file ``path`` names (itself, or a run folder's checkpoint.h5), or None for an exported
    policy (a SavedModel folder, a .tflite, .onnx or .keras file). A folder holding neither is refused."""
    path = Path(path)
    require_existing(path)
    if path.is_dir() and not (path / "checkpoint.h5").exists():
        if (path / "saved_model.pb").exists():
            return None
        best = path / "best.h5"
        hint = f"; its best.h5 holds the best evaluated policy: rdpg evaluate {shlex.quote(str(best))}" \
            if best.is_file() else ""
        raise CheckpointError(f"{path}: a folder with no checkpoint.h5 (and not a SavedModel){hint}")
    if path.is_file() and path.suffix.lower() in (".tflite", ".onnx", ".keras"):
        return None
    from rdpg_cli.checkpoint import find_checkpoint

    return find_checkpoint(path)


def read_before_tensorflow(checkpoint: Path) -> None:
    """Read a checkpoint file (``locate_checkpoint``'s, ``find_checkpoint``'s), weights and stored config, while
    TensorFlow is not loaded yet: a file that is no checkpoint of rdpg's, a damaged or a newer one is refused at
    once, not after the seconds TensorFlow takes to start. (Read again when the policy is built. Its environment
    is checked then: a custom one may import TensorFlow, which must start with rdpg's settings.)"""
    from rdpg_cli.checkpoint import config_from_checkpoint, read_checkpoint

    config_from_checkpoint(read_checkpoint(checkpoint, with_replay=False), str(checkpoint))


def load_policy(path: Path) -> tuple[Config, object, str]:
    """-> (config, policy with reset()/act(), label). Exports are recognised by their shape on disk."""
    checkpoint = locate_checkpoint(path)
    if checkpoint is None:
        from rdpg_cli.export import load_exported_policy

        return load_exported_policy(Path(path))
    from rdpg_cli.policy import AgentPolicy, load_agent

    config, agent, _ = load_agent(checkpoint)
    return config, AgentPolicy(agent), str(checkpoint)
