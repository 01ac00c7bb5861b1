"""Self-describing HDF5 checkpoints, written atomically, read without running any code from the file.

Layout (``format = "rdpg-checkpoint"``, ``format_version = 1``):
  attrs      format, format_version, rdpg_version, config (YAML), env_id, observation_dim, action_dim,
             full_observation_dim (before env.observation_indices; files without it: observation_dim), low,
             high, env_steps, gradient_steps, episodes, trainer_state (JSON), noise_state (JSON)
  /weights/<network>/<0000..>      every variable of actor, critic(s) and their targets, in creation order
  /optimizers/<name>/<0000..>      Adam state (iterations, moments) of the actor and critic optimizers
  /counters/<0000..>               the compiled step's counters
  /acting/                         the episode in progress: actor state, previous action, executed actions
  /replay/                         the replay memory (optional, ``train.save_replay``)
Each variable dataset keeps the variable's path as its ``name`` attribute, for people reading the file.
"""

from __future__ import annotations

import io
import json
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rdpg_cli import __version__
from rdpg_cli.config import Config, config_from_dict
from rdpg_cli.envs import EnvSpec
from rdpg_cli.errors import CheckpointError, ConfigError, first_line
from rdpg_cli.input_files import FileMessages, regular_file_size
from rdpg_cli.memory import online_weights

FORMAT = "rdpg-checkpoint"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # an HDF5 file's first bytes (rdpg writes no user block)
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
    full_observation_dim: int = 0  # the environment's whole observation (not given: observation_dim)

    def __post_init__(self) -> None:
        self.full_observation_dim = self.full_observation_dim or self.observation_dim

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
    leaves either the old complete file or the new complete file, never a damaged one.

    The HDF5 image is built in memory and written with plain file I/O: a full disk or a file-size limit is
    then an ``OSError`` here, with the temporary file removed. Writing through HDF5 itself, such a failure
    surfaces when HDF5 flushes its metadata, as exceptions h5py cannot raise (and, on this TF/h5py stack,
    a segmentation fault at exit)."""
    image = _hdf5_image(data)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(image)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _hdf5_image(data: CheckpointData) -> memoryview:
    """The checkpoint file's bytes."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = data.format_version
        f.attrs["rdpg_version"] = data.rdpg_version
        f.attrs["config"] = data.config_yaml
        f.attrs["env_id"] = data.env_id
        f.attrs["observation_dim"] = data.observation_dim
        f.attrs["full_observation_dim"] = data.full_observation_dim
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
    return buffer.getbuffer()


# Everything read from a checkpoint is in the file: rdpg writes datasets uncompressed and never links one
# piece of data twice. So a reader that refuses, before reading, any dataset or attribute that would take
# the bytes read past the file's size cannot be made to allocate more than the file holds, however the file
# was crafted (a dataset of a huge shape with unallocated or compressed storage, one dataset hard-linked many
# times, a scalar string attribute pointing at one big heap string from many objects).
TOP_LEVEL = ("weights", "optimizers", "counters", "acting", "replay")
# Plausible sizes of an environment's observation and action vectors; anything beyond is a crafted file.
MAX_DIM = 1_000_000


class _Reader:
    """Reads one open checkpoint file within a byte budget; every problem is a one-line CheckpointError."""

    def __init__(self, f: Any, path: Path, budget: int):
        self.f = f
        self.path = path
        self.left = budget

    def damaged(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: damaged checkpoint: {what}")

    def spend(self, nbytes: int, where: str) -> None:
        if nbytes > self.left:
            raise self.damaged(f"'{where}' claims {nbytes} bytes, more than the file holds; refused unread")
        self.left -= nbytes

    def member(self, group: Any, key: str, where: str, kind: type) -> Any:
        """``group[key]``, a hard-linked ``kind`` (h5py.Group or h5py.Dataset) or a CheckpointError."""
        import h5py

        link = group.get(key, getlink=True)
        if link is None:
            raise self.damaged(f"'{where}' is missing")
        if not isinstance(link, h5py.HardLink):
            raise self.damaged(f"'{where}' is a link ({type(link).__name__}); rdpg writes none")
        obj = group[key]
        if not isinstance(obj, kind):
            raise self.damaged(f"'{where}' should be a {kind.__name__.lower()}, not a {type(obj).__name__.lower()}")
        return obj

    def array(self, ds: Any, where: str) -> np.ndarray:
        """A numeric dataset, its size checked against the budget before a byte is read."""
        if ds.shape is None:
            raise self.damaged(f"'{where}' has no dataspace")
        if ds.dtype.kind not in "fiub" or ds.dtype.fields is not None:
            raise self.damaged(f"'{where}' has dtype {ds.dtype}; rdpg writes numbers only")
        if ds.size > MAX_DATASET_ELEMENTS:
            raise self.damaged(f"'{where}' has absurd shape {ds.shape}")
        self.spend(int(ds.size) * ds.dtype.itemsize, where)
        return np.asarray(ds[()])

    def numbered_arrays(self, group: Any, where: str) -> tuple[list[np.ndarray], list[str]]:
        """Datasets 0000, 0001, ... of ``group`` in order, and their ``name`` attributes."""
        import h5py

        keys = sorted(group.keys())
        expected = [f"{i:04d}" for i in range(len(keys))]
        if keys != expected:
            odd = next(k for k, e in zip(keys, expected, strict=True) if k != e)
            raise self.damaged(f"'{where}/{odd}' is not a numbered variable (expected {expected[keys.index(odd)]})")
        arrays, names = [], []
        for key in keys:
            ds = self.member(group, key, f"{where}/{key}", h5py.Dataset)
            arrays.append(self.array(ds, f"{where}/{key}"))
            names.append(self.text_attr(ds, "name", f"{where}/{key}", default=key))
        return arrays, names

    def arrays_by_name(self, group: Any, where: str) -> dict[str, np.ndarray]:
        import h5py

        return {key: self.array(self.member(group, key, f"{where}/{key}", h5py.Dataset), f"{where}/{key}")
                for key in group.keys()}

    def _attr_id(self, obj: Any, name: str, where: str, default: Any) -> Any:
        if name not in obj.attrs:
            if default is not None:
                return None
            raise self.damaged(f"attribute '{where}' is missing")
        return obj.attrs.get_id(name)

    def text_attr(self, obj: Any, name: str, where: str | None = None, default: str | None = None) -> str:
        import h5py

        where = f"{where}@{name}" if where else name
        aid = self._attr_id(obj, name, where, default)
        if aid is None:
            return str(default)
        string = h5py.check_string_dtype(aid.dtype)
        if aid.shape != () or (string is None and aid.dtype.kind != "S"):
            raise self.damaged(f"attribute '{where}' should be text, not {aid.dtype} of shape {aid.shape}")
        if string is None or string.length is not None:  # fixed length: its size is known before reading
            self.spend(aid.dtype.itemsize, where)
        value = obj.attrs[name]
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise self.damaged(f"attribute '{where}' is not UTF-8 text") from None
        if string is not None and string.length is None:  # variable length: counted once read
            self.spend(len(value), where)
        return str(value)

    def number_attr(self, name: str, kinds: str = "iu", low: float = 0, high: float = 2**63 - 1) -> Any:
        aid = self._attr_id(self.f, name, name, None)
        if aid.shape not in ((), (1,)) or aid.dtype.kind not in kinds:
            raise self.damaged(f"attribute '{name}' should be one number, not {aid.dtype} of shape {aid.shape}")
        value = np.asarray(self.f.attrs[name]).reshape(()).item()
        if not low <= value <= high:
            raise self.damaged(f"attribute '{name}' is {value}, outside [{low}, {high}]")
        return value

    def bounds_attr(self, name: str, action_dim: int) -> np.ndarray:
        aid = self._attr_id(self.f, name, name, None)
        if aid.shape != (action_dim,) or aid.dtype.kind != "f":
            raise self.damaged(f"attribute '{name}' should hold {action_dim} numbers, not {aid.dtype} of "
                               f"shape {aid.shape}")
        self.spend(action_dim * aid.dtype.itemsize, name)
        value = np.asarray(self.f.attrs[name], np.float32)
        if not np.all(np.isfinite(value)):
            raise self.damaged(f"attribute '{name}' holds non-finite values {value.tolist()}")
        return value


CHECKPOINT_FILE = FileMessages(
    not_found="{shown}: checkpoint not found",
    unreadable="{shown}: cannot read it: {reason}",
    folder="{shown}: is a folder, not a checkpoint file",
    not_regular="{shown}: not a regular file",
)


def _open_regular_file(path: Path) -> int:
    """The size of ``path`` if it is a regular file; a one-line CheckpointError otherwise."""
    return regular_file_size(path, str(path), CheckpointError, CHECKPOINT_FILE)


def read_checkpoint(path: Path, with_replay: bool = True) -> CheckpointData:
    """Read and check a checkpoint; every problem is a one-line CheckpointError. Nothing in the file is
    executed, and nothing larger than the file is allocated (see ``_Reader``)."""
    import h5py

    path = Path(path)
    size = _open_regular_file(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        try:
            with open(path, "rb") as fh:
                is_hdf5 = fh.read(8) == HDF5_SIGNATURE
        except OSError as unreadable:  # no permission (chmod 000): not a question of the file's content
            raise CheckpointError(f"{path}: cannot read it ({unreadable.strerror or unreadable})") from None
        reason = "truncated or damaged HDF5 file" if is_hdf5 else "not an HDF5 file"
        raise CheckpointError(f"{path}: {reason} ({first_line(exc)})") from None
    try:
        with f:
            return _read(_Reader(f, path, size), with_replay)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {first_line(exc)})") from None


def _read(r: _Reader, with_replay: bool) -> CheckpointData:
    import h5py

    f, path = r.f, r.path
    try:
        is_rdpg = r.text_attr(f, "format", default="") == FORMAT
    except CheckpointError:
        is_rdpg = False
    if not is_rdpg:
        raise CheckpointError(f"{path}: an HDF5 file, but not an rdpg checkpoint")
    version = r.number_attr("format_version", high=2**31)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version} is newer than this rdpg supports "
            f"({FORMAT_VERSION}); upgrade rdpg")
    if version < 1:
        raise r.damaged(f"format_version {version}")
    unknown = sorted(set(f.keys()) - set(TOP_LEVEL))
    if unknown:
        raise r.damaged(f"unexpected member '{unknown[0]}' (an rdpg checkpoint holds {', '.join(TOP_LEVEL)})")
    action_dim = r.number_attr("action_dim", low=1, high=MAX_DIM)
    observation_dim = r.number_attr("observation_dim", low=1, high=MAX_DIM)
    # Written since critics could read the whole observation; a file from before has none, and the same.
    full_observation_dim = r.number_attr("full_observation_dim", low=1, high=MAX_DIM) \
        if "full_observation_dim" in f.attrs else observation_dim
    low, high = r.bounds_attr("low", action_dim), r.bounds_attr("high", action_dim)
    if not np.all(low < high):
        raise r.damaged(f"bounds low {low.tolist()} are not below high {high.tolist()}")
    counters = {k: int(r.number_attr(k)) for k in ("env_steps", "gradient_steps", "episodes")}
    variables: dict[str, list[np.ndarray]] = {}
    names: dict[str, list[str]] = {}
    for parent in ("weights", "optimizers"):
        parent_group = r.member(f, parent, parent, h5py.Group)
        for group_name in sorted(parent_group.keys()):
            where = f"{parent}/{group_name}"
            if group_name == "counters" or group_name in variables:
                raise r.damaged(f"'{where}' clashes with another group of that name")
            group = r.member(parent_group, group_name, where, h5py.Group)
            variables[group_name], names[group_name] = r.numbered_arrays(group, where)
    counters_group = r.member(f, "counters", "counters", h5py.Group) if "counters" in f else None
    variables["counters"] = r.numbered_arrays(counters_group, "counters")[0] if counters_group else []
    acting = r.arrays_by_name(r.member(f, "acting", "acting", h5py.Group), "acting") if "acting" in f else {}
    replay = None
    if with_replay and "replay" in f:
        replay = r.arrays_by_name(r.member(f, "replay", "replay", h5py.Group), "replay")
    return CheckpointData(
        config_yaml=r.text_attr(f, "config"),
        env_id=r.text_attr(f, "env_id"),
        observation_dim=int(observation_dim),
        action_dim=int(action_dim),
        low=low,
        high=high,
        counters=counters,
        variables=variables,
        variable_names=names,
        trainer_state=r.text_attr(f, "trainer_state"),
        noise_state=r.text_attr(f, "noise_state"),
        acting=acting,
        replay=replay,
        rdpg_version=r.text_attr(f, "rdpg_version"),
        format_version=int(version),
        full_observation_dim=int(full_observation_dim),
    )


def trainer_state_dict(data: CheckpointData) -> dict[str, Any]:
    try:
        state = json.loads(data.trainer_state)
    except (json.JSONDecodeError, RecursionError):
        raise CheckpointError("damaged checkpoint: trainer_state is not JSON") from None
    if not isinstance(state, dict):
        raise CheckpointError("damaged checkpoint: trainer_state is not a JSON object")
    return state


def check_training_state(state: dict[str, Any], counters: dict[str, int]) -> None:
    """The trainer state a checkpoint holds, checked before any of it is used: counters that are
    non-negative whole numbers and agree with the file's own attributes, finite returns. A ValueError names
    the first that is not (a damaged checkpoint, one line)."""
    for name in ("env_steps", "episodes", "critic_updates", "episode_length"):
        value = state.get(name)
        if type(value) is not int or value < 0:
            raise ValueError(f"trainer_state.{name} is {value!r}, not a count")
    for name in ("env_steps", "episodes"):
        if name in counters and counters[name] != state[name]:
            raise ValueError(f"trainer_state.{name} {state[name]} disagrees with the file's {name} "
                             f"{counters[name]}")

    def finite(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not finite(state.get("episode_return")):
        raise ValueError(f"trainer_state.episode_return is {state.get('episode_return')!r}, not a finite number")
    if state.get("best_eval") is not None and not finite(state["best_eval"]):
        raise ValueError(f"trainer_state.best_eval is {state['best_eval']!r}, not a finite number")
    last = state.get("last_eval")
    if last and not (isinstance(last, list) and len(last) == 2 and finite(last[0]) and finite(last[1])):
        raise ValueError(f"trainer_state.last_eval is {last!r}, not [mean, std] of an evaluation")
    recent = state.get("recent_returns")
    if not isinstance(recent, list) or not all(finite(r) for r in recent):
        raise ValueError("trainer_state.recent_returns is not a list of finite numbers")
    sums = state.get("accumulators")
    if not isinstance(sums, dict) or not all(
            isinstance(v, list) and len(v) == 2 and finite(v[0]) and finite(v[1]) for v in sums.values()):
        raise ValueError("trainer_state.accumulators is not a mapping of [sum, count] pairs")


def checked_training_state(data: CheckpointData) -> dict[str, Any]:
    """The checkpoint's trainer state, checked (``check_training_state``): a CheckpointError otherwise."""
    state = trainer_state_dict(data)
    try:
        check_training_state(state, data.counters)
    except ValueError as exc:
        raise CheckpointError(f"damaged checkpoint: training state ({exc})") from None
    return state


def _no_checkpoint_hint(folder: Path) -> str:
    """What to do with a run folder that holds no checkpoint: its run stopped before the first one."""
    if not (folder / "config.yaml").exists():
        return ""
    quoted = shlex.quote(str(folder))
    again = f"rdpg train --preset {shlex.quote(str(folder / 'config.yaml'))} --run-dir {quoted} --force"
    if (folder / "best.h5").exists():  # --force would remove it: the one policy the run has
        return (f" (its run stopped before the first one; best.h5 holds its best evaluation: copy it into a new "
                f"folder as checkpoint.h5 to train on from it, or start again, which removes it: {again})")
    return f" (its run stopped before the first one: start it again with {again})"


def find_checkpoint(path: Path) -> Path:
    """A checkpoint file, or a run folder holding ``checkpoint.h5``."""
    path = Path(path)
    try:
        is_dir = path.is_dir()
    except (OSError, ValueError):
        is_dir = False  # _open_regular_file says why
    if is_dir:
        candidate = path / "checkpoint.h5"
        if not candidate.exists():
            raise CheckpointError(f"{path}: no checkpoint.h5 in this folder{_no_checkpoint_hint(path)}")
        return candidate
    _open_regular_file(path)
    return path


def newest_checkpoint(runs_dir: Path = Path("runs")) -> Path:
    """The most recently written ``checkpoint.h5`` under ``runs/``."""
    candidates = list(Path(runs_dir).glob("**/checkpoint.h5")) if Path(runs_dir).is_dir() else []
    if not candidates:
        raise CheckpointError(f"no checkpoint given and none found under {runs_dir}/ (train one first)")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def spec_from_checkpoint(data: CheckpointData) -> EnvSpec:
    return EnvSpec(env_id=data.env_id, observation_dim=data.observation_dim, action_dim=data.action_dim,
                   full_observation_dim=data.full_observation_dim,
                   low=np.asarray(data.low, np.float32), high=np.asarray(data.high, np.float32))


def config_from_checkpoint(data: CheckpointData, source: str) -> Config:
    try:
        config = config_from_dict(data.config_dict, source=f"{source} (stored config)")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    # Not YAML, odd types in it, or nesting too deep for the parser (a crafted file).
    except (yaml.YAMLError, TypeError, ValueError, KeyError, AttributeError, RecursionError, MemoryError,
            OverflowError):
        raise CheckpointError(f"{source}: damaged checkpoint: the stored config does not parse") from None
    if config.env.id != data.env_id:
        raise CheckpointError(f"{source}: damaged checkpoint: the stored config is for {config.env.id!r}, "
                              f"the file's env_id says {data.env_id!r}")
    # Building the agent allocates what the config asks for before any shape can be compared, so a config
    # whose networks dwarf the stored weights (a crafted or mismatched file) is refused first. The bound is
    # loose (a quarter of a lower bound): the exact check is restore_agent's.
    held = sum(int(a.size) for name, arrays in data.variables.items() if name != "counters" for a in arrays)
    needed = online_weights(config, data.observation_dim, data.action_dim, data.full_observation_dim)
    if needed > 4 * held:
        raise CheckpointError(
            f"{source}: the stored config's networks need at least {needed} weights, the file holds {held}; "
            "the config does not match the weights")
    return config
