"""Self-describing HDF5 checkpoints, written atomically, read without running any code from the file.

Layout (``format = "rdpg-checkpoint"``, ``format_version = 1``):
  attrs      format, format_version, rdpg_version, config (YAML), env_id, observation_dim, action_dim,
             low, high, env_steps, gradient_steps, episodes, trainer_state (JSON), noise_state (JSON)
  /weights/<network>/<0000..>      every variable of actor, critic(s) and their targets, in creation order
  /optimizers/<name>/<0000..>      Adam state (iterations, moments) of the actor and critic optimizers
  /counters/<0000..>               the compiled step's counters
  /acting/                         the episode in progress: actor state, previous action
  /replay/                         the replay memory (optional, ``train.save_replay``)
Each variable dataset keeps the variable's path as its ``name`` attribute, for people reading the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rdpg_cli import __version__
from rdpg_cli.config import Config, config_from_dict
from rdpg_cli.envs import EnvSpec
from rdpg_cli.errors import CheckpointError, ConfigError

FORMAT = "rdpg-checkpoint"
FORMAT_VERSION = 1
# Nothing legitimate is this large; a crafted file claiming more is refused before anything is read.
MAX_DATASET_ELEMENTS = 200_000_000


@dataclass
class CheckpointData:
    """What a checkpoint holds, as plain numpy arrays and strings."""

    config_yaml: str
    env_id: str
    observation_dim: int
    action_dim: int
    low: np.ndarray
    high: np.ndarray
    counters: dict[str, int]
    variables: dict[str, list[np.ndarray]]  # group name -> arrays in variable order
    variable_names: dict[str, list[str]] = field(default_factory=dict)
    trainer_state: str = "{}"
    noise_state: str = "{}"
    acting: dict[str, np.ndarray] = field(default_factory=dict)
    replay: dict[str, np.ndarray] | None = None
    rdpg_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def config_dict(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_yaml)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_checkpoint(path: Path, data: CheckpointData) -> None:
    """Write to a temporary file in the same folder, fsync, and rename over ``path``: a crash at any moment
    leaves either the old complete file or the new complete file, never a damaged one."""
    import h5py

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = data.format_version
            f.attrs["rdpg_version"] = data.rdpg_version
            f.attrs["config"] = data.config_yaml
            f.attrs["env_id"] = data.env_id
            f.attrs["observation_dim"] = data.observation_dim
            f.attrs["action_dim"] = data.action_dim
            f.attrs["low"] = np.asarray(data.low, np.float32)
            f.attrs["high"] = np.asarray(data.high, np.float32)
            for key, value in data.counters.items():
                f.attrs[key] = int(value)
            f.attrs["trainer_state"] = data.trainer_state
            f.attrs["noise_state"] = data.noise_state
            for group_name, arrays in data.variables.items():
                parent = "counters" if group_name == "counters" else (
                    "optimizers" if group_name.endswith("optimizer") else "weights")
                group = f.require_group(parent) if parent == "counters" else f.require_group(
                    f"{parent}/{group_name}")
                names = data.variable_names.get(group_name, [])
                for i, array in enumerate(arrays):
                    ds = group.create_dataset(f"{i:04d}", data=np.asarray(array))
                    if i < len(names):
                        ds.attrs["name"] = names[i]
            acting = f.create_group("acting")
            for key, value in data.acting.items():
                acting.create_dataset(key, data=np.asarray(value))
            if data.replay is not None:
                replay = f.create_group("replay")
                for key, value in data.replay.items():
                    replay.create_dataset(key, data=np.asarray(value))
            f.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_arrays(group: Any, where: str) -> list[np.ndarray]:
    import h5py

    arrays = []
    for key in sorted(group.keys()):
        ds = group[key]
        if not isinstance(ds, h5py.Dataset):
            raise CheckpointError(f"{where}/{key}: expected a dataset")
        if ds.size > MAX_DATASET_ELEMENTS:
            raise CheckpointError(f"{where}/{key}: absurd shape {ds.shape}")
        if ds.dtype.kind not in "fiub":
            raise CheckpointError(f"{where}/{key}: unexpected dtype {ds.dtype}")
        arrays.append(ds[()])
    return arrays


def _attr(f: Any, name: str, path: Path) -> Any:
    if name not in f.attrs:
        raise CheckpointError(f"{path}: damaged checkpoint: attribute '{name}' is missing")
    value = f.attrs[name]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value


def read_checkpoint(path: Path, with_replay: bool = True) -> CheckpointData:
    """Read and check a checkpoint; every problem is a one-line CheckpointError."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        with open(path, "rb") as fh:
            is_hdf5 = fh.read(8) == b"\x89HDF\r\n\x1a\n"
        reason = "truncated or damaged HDF5 file" if is_hdf5 else "not an HDF5 file"
        raise CheckpointError(f"{path}: {reason} ({str(exc).splitlines()[0][:80]})") from None
    try:
        with f:
            if f.attrs.get("format") not in (FORMAT, FORMAT.encode()):
                raise CheckpointError(f"{path}: an HDF5 file, but not an rdpg checkpoint")
            version = int(_attr(f, "format_version", path))
            if version > FORMAT_VERSION:
                raise CheckpointError(
                    f"{path}: checkpoint format_version {version} is newer than this rdpg supports "
                    f"({FORMAT_VERSION}); upgrade rdpg")
            variables: dict[str, list[np.ndarray]] = {}
            names: dict[str, list[str]] = {}
            for parent in ("weights", "optimizers"):
                if parent not in f:
                    raise CheckpointError(f"{path}: damaged checkpoint: group '{parent}' is missing")
                for group_name in f[parent]:
                    group = f[parent][group_name]
                    variables[group_name] = _read_arrays(group, f"{parent}/{group_name}")
                    names[group_name] = [str(group[k].attrs.get("name", k)) for k in sorted(group.keys())]
            variables["counters"] = _read_arrays(f["counters"], "counters") if "counters" in f else []
            acting = {k: f["acting"][k][()] for k in f["acting"]} if "acting" in f else {}
            replay = None
            if with_replay and "replay" in f:
                replay = {}
                for k in f["replay"]:
                    ds = f["replay"][k]
                    if ds.size > MAX_DATASET_ELEMENTS:
                        raise CheckpointError(f"{path}: replay/{k}: absurd shape {ds.shape}")
                    replay[k] = ds[()]
            counters = {k: int(_attr(f, k, path)) for k in ("env_steps", "gradient_steps", "episodes")}
            return CheckpointData(
                config_yaml=str(_attr(f, "config", path)),
                env_id=str(_attr(f, "env_id", path)),
                observation_dim=int(_attr(f, "observation_dim", path)),
                action_dim=int(_attr(f, "action_dim", path)),
                low=np.asarray(_attr(f, "low", path), np.float32),
                high=np.asarray(_attr(f, "high", path), np.float32),
                counters=counters,
                variables=variables,
                variable_names=names,
                trainer_state=str(_attr(f, "trainer_state", path)),
                noise_state=str(_attr(f, "noise_state", path)),
                acting=acting,
                replay=replay,
                rdpg_version=str(_attr(f, "rdpg_version", path)),
                format_version=version,
            )
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:80] if str(exc) else ''})") from None


def trainer_state_dict(data: CheckpointData) -> dict[str, Any]:
    try:
        return json.loads(data.trainer_state)
    except json.JSONDecodeError:
        raise CheckpointError("damaged checkpoint: trainer_state is not JSON") from None


def find_checkpoint(path: Path) -> Path:
    """A checkpoint file, or a run folder holding ``checkpoint.h5``."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoint.h5"
        if not candidate.exists():
            raise CheckpointError(f"{path}: no checkpoint.h5 in this folder")
        return candidate
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def newest_checkpoint(runs_dir: Path = Path("runs")) -> Path:
    """The most recently written ``checkpoint.h5`` under ``runs/``."""
    candidates = list(Path(runs_dir).glob("**/checkpoint.h5")) if Path(runs_dir).is_dir() else []
    if not candidates:
        raise CheckpointError(f"no checkpoint given and none found under {runs_dir}/ (train one first)")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def spec_from_checkpoint(data: CheckpointData) -> EnvSpec:
    return EnvSpec(env_id=data.env_id, observation_dim=data.observation_dim, action_dim=data.action_dim,
                   low=np.asarray(data.low, np.float32), high=np.asarray(data.high, np.float32))


def config_from_checkpoint(data: CheckpointData, source: str) -> Config:
    try:
        return config_from_dict(data.config_dict, source=f"{source} (stored config)")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    except Exception:
        raise CheckpointError(f"{source}: damaged checkpoint: the stored config does not parse") from None
