"""Typed, frozen configuration: load a YAML preset, apply ``--set`` overrides, validate.

Every field carries its one-line documentation in ``metadata["doc"]`` (shown by ``rdpg presets show``
and used in error messages); range rules live in ``metadata["check"]``. Nothing here imports TensorFlow
or gymnasium, so the CLI can validate a preset before paying for either.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from rdpg_cli.errors import ConfigError

# ----------------------------------------------------------------------------------------------------------
# Field helpers: a default, a doc string and an optional range rule, in one call.


def _f(default: Any, doc: str, check: str | None = None) -> Any:
    meta = {"doc": doc, "check": check}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


# Range rules, by name, so the message can say what is allowed.
_CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "positive": (lambda v: v > 0, "must be > 0"),
    "nonnegative": (lambda v: v >= 0, "must be >= 0"),
    "unit": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "unit_open": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "positive_items": (lambda v: all(x > 0 for x in v), "every entry must be > 0"),
    "nonnegative_items": (lambda v: all(x >= 0 for x in v), "every entry must be >= 0"),
}


@dataclass(frozen=True)
class EnvConfig:
    """Which gymnasium environment to train on, and how it is wrapped."""

    id: str = _f("", "gymnasium environment id, e.g. Pendulum-v1 (required)")
    kwargs: dict[str, Any] = _f({}, "keyword arguments passed to gymnasium.make")
    observation_indices: list[int] | None = _f(
        None, "keep only these observation components (partial observability); null keeps all",
        "nonnegative_items")
    max_episode_steps: int | None = _f(None, "time limit per episode; null keeps the env's own", "positive")


@dataclass(frozen=True)
class BoundsConfig:
    """Action bounds the actor is kept inside, one number per action dimension."""

    low: list[float] | None = _f(None, "lower bound per action dimension; null takes the env's action space")
    high: list[float] | None = _f(None, "upper bound per action dimension; null takes the env's action space")


@dataclass(frozen=True)
class AgentConfig:
    """The learning algorithm: DDPG/RDPG with inverting gradients and optional TD3 options."""

    gamma: float = _f(0.99, "discount factor", "unit")
    batch_size: int = _f(256, "sequences (feed-forward: transitions) per gradient step", "positive")
    warmup_steps: int = _f(1000, "env steps of uniform random actions before the actor acts", "nonnegative")
    warmup_critic: int = _f(1000, "env steps before the critic starts learning", "nonnegative")
    warmup_actor: int = _f(1000, "env steps before the actor starts learning", "nonnegative")
    target_update: float = _f(0.005, "< 1: soft update rate tau; >= 1: hard copy every that many gradient steps",
                              "positive")
    actor_lr: float = _f(1.0e-3, "actor Adam learning rate", "positive")
    critic_lr: float = _f(1.0e-3, "critic Adam learning rate", "positive")
    clipnorm: float | None = _f(None, "clip the actor's (inverted) gradients by this global norm", "positive")
    clipvalue: float | None = _f(None, "clip the actor's (inverted) gradients elementwise to +-this value",
                                 "positive")
    delta_clip: float | None = _f(None, "Huber delta of the critic loss; null uses the squared error", "positive")
    noise: Literal["gaussian", "ou", "none"] = _f("gaussian", "exploration noise added to the actor's action")
    noise_sigma: float = _f(0.1, "noise scale as a fraction of half the action range", "nonnegative")
    noise_sigma_final: float | None = _f(None, "anneal the noise scale linearly to this value; null keeps it",
                                         "nonnegative")
    noise_anneal_steps: int = _f(0, "env steps over which noise_sigma anneals to noise_sigma_final",
                                 "nonnegative")
    ou_theta: float = _f(0.15, "Ornstein-Uhlenbeck mean-reversion rate (noise: ou)", "positive")
    train_interval: int = _f(1, "env steps between rounds of gradient steps", "positive")
    gradient_steps: int = _f(1, "gradient steps per round", "positive")
    twin_critics: bool = _f(False, "TD3: two critics, the target takes their minimum")
    policy_delay: int = _f(1, "TD3: one actor (and actor-target) update every this many critic updates",
                           "positive")
    target_noise: float = _f(0.0, "TD3 target policy smoothing: noise std as a fraction of half the range",
                             "nonnegative")
    target_noise_clip: float = _f(0.5, "TD3: clip the smoothing noise to +-this fraction of half the range",
                                  "nonnegative")
    bounding: Literal["invert", "tanh", "clip"] = _f(
        "invert", "how actions stay in bounds: inverting gradients, tanh squashing, or clipping when acting")


@dataclass(frozen=True)
class NetworkConfig:
    """Actor and critic architecture."""

    actor_layers: list[int] = _f([256, 256], "dense layer sizes of the actor", "positive_items")
    critic_layers: list[int] = _f([256, 256], "dense layer sizes of the critic", "positive_items")
    recurrent: Literal["none", "lstm", "gru"] = _f("none", "recurrent layer reading the history (RDPG)")
    units: int = _f(64, "units of the recurrent layer", "positive")
    history: Literal["obs", "obs+prev_action"] = _f(
        "obs", "what the recurrent layer reads at each step: the observation, or it and the previous action")


@dataclass(frozen=True)
class ReplayConfig:
    """Replay memory and how sequences are sampled from it."""

    size: int = _f(1_000_000, "transitions kept (oldest dropped first)", "positive")
    sequence_length: int = _f(1, "trained steps per sampled window (feed-forward: 1)", "positive")
    burn_in: int = _f(0, "steps before the trained ones that only warm up the recurrent state", "nonnegative")
    store_state: bool = _f(False, "start windows from the actor's recurrent state recorded while acting (R2D2)")


@dataclass(frozen=True)
class TrainConfig:
    """The training run: budget, seed and how often to evaluate, log and checkpoint."""

    steps: int = _f(10_000, "total env steps of the run", "positive")
    seed: int = _f(0, "seed for networks, replay sampling, noise and environments", "nonnegative")
    eval_every: int = _f(1000, "env steps between deterministic evaluations", "positive")
    eval_episodes: int = _f(10, "episodes per evaluation", "positive")
    checkpoint_every: int = _f(5000, "env steps between writes of checkpoint.h5", "positive")
    log_every: int = _f(1000, "env steps between rows of metrics.csv", "positive")
    save_replay: bool = _f(True, "save the replay memory beside the checkpoint so a resume continues exactly")


@dataclass(frozen=True)
class Config:
    """A whole resolved preset."""

    env: EnvConfig = field(default_factory=EnvConfig)
    action_bounds: BoundsConfig = field(default_factory=BoundsConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "custom"
    description: str = ""

    @property
    def recurrent(self) -> bool:
        return self.network.recurrent != "none"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (validated again)."""
        data = self.to_dict()
        data[section].update(changes)
        return config_from_dict(data, source="<config>")


SECTIONS: dict[str, type] = {
    "env": EnvConfig,
    "action_bounds": BoundsConfig,
    "agent": AgentConfig,
    "network": NetworkConfig,
    "replay": ReplayConfig,
    "train": TrainConfig,
}
TOP_LEVEL_SCALARS = ("name", "description")


def all_keys() -> list[str]:
    """Every valid dotted key, for suggestions and documentation."""
    keys = list(TOP_LEVEL_SCALARS)
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def field_docs() -> dict[str, str]:
    return {
        f"{section}.{f.name}": f.metadata.get("doc", "")
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    }


def _suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ----------------------------------------------------------------------------------------------------------
# Type checking of one value against a field annotation.


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict or tp is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, str(tp))


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null"
    return f"{value!r}"


class _Mismatch(Exception):
    pass


def _coerce(value: Any, tp: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise _Mismatch. Never converts strings to numbers or booleans."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if isinstance(value, str) and value in typing.get_args(tp):
            return value
        raise _Mismatch
    if origin is list:
        if not isinstance(value, list):
            raise _Mismatch
        (item_type,) = typing.get_args(tp)
        return [_coerce(v, item_type) for v in value]
    if origin is dict or tp is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _Mismatch
        return dict(value)
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise _NonFinite
            return float(value)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise _Mismatch


class _NonFinite(_Mismatch):
    pass


def _looks_numeric(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_value(key: str, value: Any, tp: Any, check: str | None, where: str) -> Any:
    try:
        out = _coerce(value, tp)
    except _NonFinite:
        raise ConfigError(f"{where}: {key}: {value!r} is not a finite number") from None
    except _Mismatch:
        hint = ""
        if _looks_numeric(value) and "number" in _type_name(tp):
            hint = f" (write it as e.g. {float(value):.1e}: YAML reads {value!r} as text)"
            if not math.isfinite(float(value)):
                raise ConfigError(f"{where}: {key}: {value!r} is not a finite number") from None
        elif isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            hint = " (write true or false without quotes)" if "true/false" in _type_name(tp) else ""
        elif isinstance(value, list) and any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise ConfigError(f"{where}: {key}: {value!r} holds a non-finite number") from None
        raise ConfigError(f"{where}: {key}: expected {_type_name(tp)}, got {_describe(value)}{hint}") from None
    if check is not None and out is not None:
        ok, rule = _CHECKS[check]
        if not ok(out):
            raise ConfigError(f"{where}: {key}: {value!r} {rule}")
    return out


def _build_section(section: str, cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {section}: expected a mapping of keys, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        dotted = f"{section}.{key}"
        if not isinstance(key, str) or key not in fields:
            raise ConfigError(f"{where}: {dotted}: unknown key{_suggest(dotted, all_keys())}")
        values[key] = _check_value(dotted, value, hints[key], fields[key].metadata.get("check"), where)
    return cls(**values)


def config_from_dict(data: Any, source: str = "<config>") -> Config:
    """Validate a parsed preset mapping into a Config; raise ConfigError with a one-line message."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {_describe(data)}")
    sections = {}
    scalars: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            sections[key] = _build_section(key, SECTIONS[key], value, source)
        elif key in TOP_LEVEL_SCALARS:
            if not isinstance(value, str):
                raise ConfigError(f"{source}: {key}: expected a string, got {_describe(value)}")
            scalars[key] = value
        else:
            raise ConfigError(
                f"{source}: {key}: unknown section{_suggest(str(key), list(SECTIONS) + list(TOP_LEVEL_SCALARS))}")
    config = Config(**sections, **scalars)
    _cross_checks(config, source)
    return config


def _cross_checks(config: Config, where: str) -> None:
    if not config.env.id:
        raise ConfigError(f"{where}: env.id: missing (every preset names its gymnasium environment)")
    low, high = config.action_bounds.low, config.action_bounds.high
    if (low is None) != (high is None):
        raise ConfigError(f"{where}: action_bounds: give both low and high, or neither")
    if low is not None and high is not None:
        if len(low) != len(high) or not low:
            raise ConfigError(
                f"{where}: action_bounds: low has {len(low)} entries and high {len(high)}; "
                "they need one each per action dimension")
        for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
            if not lo < hi:
                raise ConfigError(f"{where}: action_bounds: dimension {i}: low {lo} must be < high {hi}")
    if config.replay.burn_in and not config.recurrent:
        raise ConfigError(f"{where}: replay.burn_in: {config.replay.burn_in} needs network.recurrent lstm or gru")
    if config.replay.store_state and not config.recurrent:
        raise ConfigError(f"{where}: replay.store_state: needs network.recurrent lstm or gru")
    if config.agent.noise_sigma_final is not None and config.agent.noise_anneal_steps == 0:
        raise ConfigError(f"{where}: agent.noise_anneal_steps: must be > 0 when noise_sigma_final is set")
    if config.agent.target_update > 1 and not float(config.agent.target_update).is_integer():
        raise ConfigError(
            f"{where}: agent.target_update: {config.agent.target_update} must be < 1 (soft) or a whole number")
    window = config.replay.burn_in + config.replay.sequence_length
    if window > config.replay.size:
        raise ConfigError(f"{where}: replay.size: {config.replay.size} is smaller than one window ({window})")


# ----------------------------------------------------------------------------------------------------------
# Presets and overrides.

PRESET_PACKAGE = "rdpg_cli.presets"


def _preset_folder() -> Any:
    try:
        return resources.files(PRESET_PACKAGE)
    except ModuleNotFoundError:
        # Imported from a source checkout (not installed): the presets sit beside the package.
        return Path(__file__).resolve().parent.parent / "presets"


def shipped_presets() -> dict[str, Path]:
    folder = _preset_folder()
    return {
        Path(p.name).stem: Path(str(p))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".yaml")
    }


def resolve_preset_path(preset: str) -> Path:
    """A shipped preset name, or a path to a YAML file."""
    shipped = shipped_presets()
    if preset in shipped:
        return shipped[preset]
    path = Path(preset)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in preset:
        if not path.exists():
            raise ConfigError(f"{preset}: preset file not found")
        if path.is_dir():
            raise ConfigError(f"{preset}: is a folder, not a preset file")
        return path
    names = ", ".join(shipped)
    raise ConfigError(f"unknown preset '{preset}'{_suggest(preset, list(shipped))}; shipped presets: {names}")


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{path}: cannot read the file: {reason}") from None
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty")
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{path}: YAML does not parse{line}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML does not parse: {str(exc).splitlines()[0]}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """``section.key=value`` -> (dotted key, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key not in all_keys():
        raise ConfigError(f"--set {text}: unknown key '{key}'{_suggest(key, all_keys())}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {text}: the value does not parse as YAML") from None
    # On the command line 1e-3 means a number, whatever YAML 1.1 says.
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)
    return key, value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for dotted, value in overrides.items():
        if "." not in dotted:
            out[dotted] = value
            continue
        section, key = dotted.split(".", 1)
        current = out.get(section)
        if current is None:
            current = {}
        if not isinstance(current, dict):
            raise ConfigError(f"--set {dotted}: section '{section}' is not a mapping in the preset")
        current[key] = value
        out[section] = current
    return out


def load_config(preset: str, overrides: dict[str, Any] | None = None) -> Config:
    """Load a preset by name or path, apply overrides, validate."""
    path = resolve_preset_path(preset)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {_describe(data)}")
    data = apply_overrides(data, overrides or {})
    data.setdefault("name", path.stem)
    return config_from_dict(data, source=str(path))
