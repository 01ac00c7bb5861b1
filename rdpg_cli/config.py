"""Typed, frozen configuration: load a YAML preset, apply ``--set`` overrides, validate.

Every field carries its one-line documentation in ``metadata["doc"]`` (shown by ``rdpg presets show``
and used in error messages); range rules live in ``metadata["check"]``. Nothing here imports TensorFlow
or gymnasium, so the CLI can validate a preset before paying for either.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import struct
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from rdpg_cli.errors import ConfigError
from rdpg_cli.input_files import FileMessages, regular_file_size

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
    # Each step scales the Ornstein-Uhlenbeck noise by 1 - theta: from 2 on it grows without bound (NaN actions).
    "mean_reversion": (lambda v: 0 < v < 2, "must be in (0, 2): from 2 on the noise grows without bound (each "
                       "step scales it by 1 - theta)"),
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
    reward_scale: float = _f(1.0, "rewards are multiplied by this in the critic's TD target (Q, mean_q and "
                             "critic_loss are in those units; returns are not)", "positive")
    batch_size: int = _f(256, "sequences (feed-forward: transitions) per gradient step", "positive")
    warmup_steps: int = _f(1000, "env steps of uniform random actions before the actor acts", "nonnegative")
    warmup_critic: int = _f(1000, "env steps before the critic starts learning", "nonnegative")
    warmup_actor: int = _f(1000, "env steps before the actor starts learning (not before warmup_critic: it learns "
                           "from the critic's dQ/da)", "nonnegative")
    target_update: float = _f(0.005, "< 1: soft update rate tau; >= 1: hard copy every that many gradient steps",
                              "positive")
    actor_lr: float = _f(1.0e-3, "actor Adam learning rate", "positive")
    critic_lr: float = _f(1.0e-3, "critic Adam learning rate", "positive")
    clipnorm: float | None = _f(None, "clip the actor's (inverted) gradients by this global norm", "positive")
    clipvalue: float | None = _f(None, "clip the actor's (inverted) gradients elementwise to +-this value",
                                 "positive")
    delta_clip: float | None = _f(None, "Huber delta of the critic loss; null uses the squared error", "positive")
    noise: Literal["gaussian", "ou", "none"] = _f("gaussian", "exploration noise added to the actor's action")
    noise_sigma: float = _f(0.1, "noise scale as a fraction of half the action range: gaussian, its std; ou, the "
                            "std of each step's kick (the noise then spreads to sigma / sqrt(theta (2 - theta)), "
                            "1.9 sigma at theta 0.15)", "nonnegative")
    noise_sigma_final: float | None = _f(None, "anneal the noise scale linearly to this value; null keeps it",
                                         "nonnegative")
    noise_anneal_steps: int = _f(0, "env steps over which noise_sigma anneals to noise_sigma_final",
                                 "nonnegative")
    ou_theta: float = _f(0.15, "Ornstein-Uhlenbeck mean-reversion rate (noise: ou)", "mean_reversion")
    train_interval: int = _f(1, "env steps between rounds of gradient steps", "positive")
    gradient_steps: int = _f(1, "gradient steps per round", "positive")
    twin_critics: bool = _f(False, "TD3: two critics, the target takes their minimum")
    policy_delay: int = _f(1, "TD3: one actor update, and one soft update of every target network, every this "
                              "many critic updates", "positive")
    target_noise: float = _f(0.0, "TD3 target policy smoothing: noise std as a fraction of half the range",
                             "nonnegative")
    target_noise_clip: float = _f(0.5, "TD3: clip the smoothing noise to +-this fraction of half the range",
                                  "nonnegative")
    bounding: Literal["invert", "tanh", "clip"] = _f(
        "invert", "how actions stay in bounds: inverting gradients, tanh squashing, or clipping when acting")
    policy_weights: Literal["online", "averaged"] = _f(
        "online", "the actor that is evaluated, kept in best.h5, `rdpg evaluate`d and exported: the one being "
        "trained, or its Polyak average (the target actor; needs target_update < 1); exploration always "
        "uses the one being trained")


@dataclass(frozen=True)
class NetworkConfig:
    """Actor and critic architecture."""

    actor_layers: list[int] = _f([256, 256], "dense layer sizes of the actor", "positive_items")
    critic_layers: list[int] = _f([256, 256], "dense layer sizes of the critic", "positive_items")
    recurrent: Literal["none", "lstm", "gru"] = _f("none", "recurrent layer reading the history (RDPG)")
    units: int = _f(64, "units of the recurrent layer", "positive")
    history: Literal["obs", "obs+prev_action"] = _f(
        "obs", "what the recurrent layer reads at each step: the observation, or it and the previous action")
    critic_input: Literal["history", "full_observation"] = _f(
        "history", "what the critic reads with the action: the actor's inputs (through its own recurrent layer "
        "when network.recurrent is set), or the environment's whole observation, before env.observation_indices, "
        "feed-forward (an asymmetric critic: it is used in training only, the policy still sees only the "
        "selected components)")


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
    seed: int = _f(0, "seed for networks, replay sampling, noise and environments (below 2**32)", "nonnegative")
    eval_every: int = _f(1000, "env steps between deterministic evaluations", "positive")
    eval_episodes: int = _f(10, "episodes per evaluation", "positive")
    eval_seed: int = _f(0, "seed of the evaluation episodes' start states: the same for every run (whatever its "
                           "train.seed), so runs compare on equal terms; rdpg evaluate --seed takes the same",
                        "nonnegative")
    checkpoint_every: int = _f(5000, "env steps between writes of checkpoint.h5", "positive")
    log_every: int = _f(1000, "env steps between rows of metrics.csv", "positive")
    save_replay: bool = _f(True, "save the replay memory in checkpoint.h5 so a resume continues exactly")


@dataclass(frozen=True)
class Config:
    """A whole resolved preset."""

    env: EnvConfig = field(default_factory=EnvConfig)
    action_bounds: BoundsConfig = field(default_factory=BoundsConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = _f("custom", "the run folder's parent, runs/<name>/ (a preset file: its file name unless set)")
    description: str = _f("", "one line for `rdpg presets`")

    @property
    def recurrent(self) -> bool:
        return self.network.recurrent != "none"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, section: str, source: str = "<config>", **changes: Any) -> Config:
        """A copy with some keys of one section changed (validated again; ``source`` names them in errors)."""
        data = self.to_dict()
        data[section].update(changes)
        return config_from_dict(data, source=source)


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
    """Every key's doc: ``section.key`` for the sections' fields, the bare name for the top-level ones."""
    docs = {f"{section}.{f.name}": f.metadata.get("doc", "")
            for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    docs |= {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(Config) if f.name in TOP_LEVEL_SCALARS}
    return docs


def documented_yaml(config: Config) -> str:
    """The whole resolved config as YAML, every key with its default filled in and its doc as a comment
    (``rdpg presets show NAME --verbose``). Loads back to ``config.to_dict()``."""

    def flow(value: Any) -> str:  # one value in YAML flow style: lists stay on the key's line
        text = yaml.safe_dump({"v": value}, default_flow_style=True, width=10**6, allow_unicode=True).strip()
        return text[len("{v: "):-1]

    docs = field_docs()
    data = config.to_dict()
    lines = [f"{key}: {flow(data.pop(key))}  # {docs[key]}" for key in TOP_LEVEL_SCALARS]
    for section, values in data.items():
        lines.append(f"{section}:  # {(SECTIONS[section].__doc__ or '').strip()}")
        width = max(len(f"  {key}: {flow(value)}") for key, value in values.items())
        for key, value in values.items():
            lines.append(f"  {key}: {flow(value)}".ljust(width) + f"  # {docs[f'{section}.{key}']}")
    return "\n".join(lines) + "\n"


def _suggest(key: str, choices: list[str]) -> str:
    # The right key in the wrong section (agent.actor_layers for network.actor_layers) first: spelling
    # distance would offer agent.actor_lr.
    leaf = key.rsplit(".", 1)[-1]
    moved = [choice for choice in choices if "." in key and choice.rsplit(".", 1)[-1] == leaf]
    close = moved or difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
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
        return f"a list of {_plural_name(typing.get_args(tp)[0])}"
    if origin is dict or tp is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, str(tp))


def _plural_name(tp: Any) -> str:
    """What a list of ``tp`` holds, in the plural: ``integers``, ``numbers``, ``lists of integers``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_plural_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"lists of {_plural_name(typing.get_args(tp)[0])}"
    if origin is Literal:
        return "values among " + " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is dict or tp is dict:
        return "mappings"
    if tp is type(None):
        return "nulls"
    return {int: "integers", float: "numbers", bool: "true/false values", str: "strings"}.get(tp, str(tp))


def _options(tp: Any) -> tuple[Any, ...]:
    """The types a value may take: the members of a union (flattened), or ``tp`` itself."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(option for arg in typing.get_args(tp) for option in _options(arg))
    return (tp,)


def _first_bad_item(value: Any, tp: Any) -> tuple[Any, Any, _Mismatch] | None:
    """For a list given where ``tp`` allows one kind of list: its first entry that the entry type refuses,
    with that type and the refusal, so the message can point at it; None when there is no such entry."""
    if not isinstance(value, list):
        return None
    list_types = [option for option in _options(tp) if typing.get_origin(option) is list]
    if len(list_types) != 1:
        return None
    (item_type,) = typing.get_args(list_types[0])
    for item in value:
        try:
            _coerce(item, item_type)
        except _Mismatch as refusal:
            return item, item_type, refusal
    return None


def _show(value: Any) -> str:
    """``repr(value)`` for a message; never raises (Python refuses to print ints of over 4300 digits)."""
    try:
        return repr(value)
    except ValueError:
        return f"an integer of {value.bit_length()} bits" if isinstance(value, int) else type(value).__name__


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
    return _show(value)


class _Mismatch(Exception):
    pass


def _coerce(value: Any, tp: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise _Mismatch. Never converts strings to numbers or booleans."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        refusal: _Mismatch = _Mismatch()
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg)
            except _Mismatch as exc:
                # "not a finite number" or "too large" from the number branch says more than "expected ...".
                refusal = exc if type(refusal) is _Mismatch else refusal
                continue
        raise refusal
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
        if value is None:  # `kwargs:` with every entry commented out: none, as an empty section is the defaults
            return {}
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
            if not -(2**63) <= value < 2**63:
                raise _TooLarge
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            if not -(2.0**63) <= value < 2.0**63:
                raise _TooLarge
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                raise _TooLarge from None
            if not math.isfinite(number):
                raise _NonFinite
            return number
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise _Mismatch


class _NonFinite(_Mismatch):
    pass


class _TooLarge(_Mismatch):
    pass


# env.kwargs is passed to gymnasium as it is: plain YAML data, finite numbers, not absurdly nested.
_MAX_NESTING = 32
# Values inside one key (env.kwargs): room for a 1000 x 1000 height map, far fewer than YAML anchors can
# expand to ("billion laughs": ten aliases of ten aliases of ... are 10**9 values in a few lines).
_MAX_VALUES = 1_000_000


def _check_plain_data(key: str, value: Any, where: str) -> None:
    """Reject non-finite numbers, self-referencing (YAML anchor) loops, deep nesting and anchor expansions
    too large to walk inside a mapping."""
    stack: list[tuple[Any, int, tuple[int, ...]]] = [(value, 0, ())]
    walked = 0
    while stack:
        item, depth, ancestors = stack.pop()
        walked += 1
        if walked > _MAX_VALUES:
            raise ConfigError(f"{_at(where, key)}: holds more than {_MAX_VALUES:,} values (YAML anchors "
                              "repeated inside each other?)")
        if isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"{_at(where, key)}: holds the non-finite number {item}")
        if not isinstance(item, (dict, list)):
            continue
        if id(item) in ancestors:
            raise ConfigError(f"{_at(where, key)}: holds a structure that contains itself (a YAML anchor loop)")
        if depth >= _MAX_NESTING:
            raise ConfigError(f"{_at(where, key)}: nested more than {_MAX_NESTING} levels deep")
        children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
        stack.extend((child, depth + 1, (*ancestors, id(item))) for child in children)


def _looks_numeric(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _at(where: str, key: str) -> str:
    """Where a value came from, then its key: ``file.yaml: agent.gamma`` or ``--set agent.gamma``."""
    return f"{where} {key}" if where == "--set" else f"{where}: {key}"


def _hint(value: Any, tp: Any) -> str:
    """How to write ``value`` so that YAML reads it as ``tp``: numbers and booleans given as quoted text."""
    options = _options(tp)
    if _looks_numeric(value) and float in options and math.isfinite(float(value)):
        return f" (write it as e.g. {float(value):.1e}: YAML reads {value!r} as text)"
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off") and bool in options:
        return " (write true or false without quotes)"
    return ""


def _check_value(key: str, value: Any, tp: Any, check: str | None, where: str) -> Any:
    try:
        out = _coerce(value, tp)
    except _Mismatch as refusal:
        # A list names its wrong entry below; a single number says what is wrong with it.
        if isinstance(refusal, _NonFinite) and not isinstance(value, list):
            raise ConfigError(f"{_at(where, key)}: {_show(value)} is not a finite number") from None
        if isinstance(refusal, _TooLarge) and not isinstance(value, list):
            raise ConfigError(f"{_at(where, key)}: {_show(value)} is too large (expected {_type_name(tp)})") from None
        if isinstance(value, list) and any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise ConfigError(f"{_at(where, key)}: {_show(value)} holds a non-finite number") from None
        if _looks_numeric(value) and float in _options(tp) and not math.isfinite(float(value)):
            raise ConfigError(f"{_at(where, key)}: {value!r} is not a finite number") from None
        # A list with a wrong entry: name the entry (and give the hint for it), then the list it is in.
        bad = _first_bad_item(value, tp)
        got, wrong, wrong_type = _describe(value), value, tp
        if bad is not None:
            wrong, wrong_type, refusal = bad
            too_large = " (too large)" if isinstance(refusal, _TooLarge) else ""
            got = f"{_describe(wrong)}{too_large} in {_show(value)}"
        odd_key = next((k for k in value if not isinstance(k, str)), None) if isinstance(value, dict) else None
        if odd_key is not None:  # {1: 2}: a mapping, but keyword names are text
            got = f"a mapping whose key {_show(odd_key)} is not a string"
        raise ConfigError(f"{_at(where, key)}: expected {_type_name(tp)}, got {got}"
                          f"{_hint(wrong, wrong_type)}") from None
    if isinstance(out, dict):
        _check_plain_data(key, out, where)
    if isinstance(out, float):
        problem = _float32_problem(out)
        if problem:
            raise ConfigError(f"{_at(where, key)}: {_show(value)} {problem}")
    if check is not None and out is not None:
        ok, rule = _CHECKS[check]
        if not ok(out):
            raise ConfigError(f"{_at(where, key)}: {_show(value)} {rule}")
    return out


# The smallest normal float32: below it a number loses precision, and oneDNN may flush it to 0.
FLOAT32_TINY = 1.1754943508222875e-38


def _float32_problem(number: float) -> str | None:
    """Why a setting cannot be used as it is in float32, where training computes: a learning rate of 1e39
    becomes inf, a Huber delta or clipnorm of 1e-50 becomes 0 (the critic or actor silently stops learning)."""
    if abs(number) > FLOAT32_MAX:
        return "is beyond float32's range (±3.4e38), the precision training computes in"
    if number != 0 and abs(number) < FLOAT32_TINY:
        return "is too small for float32 (below 1.2e-38), the precision training computes in: it would act as 0"
    return None


def _build_section(section: str, cls: type, data: Any, where: str, origins: dict[str, str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {section}: expected a mapping of keys, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        dotted = f"{section}.{key if isinstance(key, str) else _show(key)}"
        if not isinstance(key, str) or key not in fields:
            raise ConfigError(f"{where}: {dotted}: unknown key{_suggest(dotted, all_keys())}")
        values[key] = _check_value(dotted, value, hints[key], fields[key].metadata.get("check"),
                                   origins.get(dotted, where))
    return cls(**values)


def config_from_dict(data: Any, source: str = "<config>", origins: dict[str, str] | None = None) -> Config:
    """Validate a parsed preset mapping into a Config; raise ConfigError with a one-line message.

    ``source`` names the file in messages; ``origins`` maps dotted keys whose value came from elsewhere
    (``--set``) to the name to use for them instead."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {_describe(data)}")
    origins = origins or {}
    sections = {}
    scalars: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            sections[key] = _build_section(key, SECTIONS[key], value, source, origins)
        elif key in TOP_LEVEL_SCALARS:
            if not isinstance(value, str):
                raise ConfigError(f"{origins.get(key, source)}: {key}: expected a string, got {_describe(value)}")
            if key == "name" and (value.strip() in ("", ".", "..") or any(c in value for c in "/\\\0")):
                raise ConfigError(f"{origins.get(key, source)}: name: {value!r} must be a plain folder name "
                                  "(runs go to runs/<name>/)")
            scalars[key] = value
        else:
            shown = key if isinstance(key, str) else _show(key)
            raise ConfigError(
                f"{source}: {shown}: unknown section{_suggest(shown, list(SECTIONS) + list(TOP_LEVEL_SCALARS))}")
    config = Config(**sections, **scalars)
    _cross_checks(config, source, origins)
    return config


FLOAT32_MAX = 3.4028234663852886e38


def _to_float32(x: float) -> float | None:
    """``x`` rounded to float32, the precision actions are computed in; None beyond its range."""
    try:
        rounded = struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return None
    return None if math.isinf(rounded) else rounded


def float32_bounds_problem(low: float, high: float) -> str | None:
    """What is wrong with bounds that are fine as Python floats but not in float32: beyond its range, equal
    once rounded (the inverted gradient divides by high - low), or a width it cannot hold."""
    low32, high32 = _to_float32(low), _to_float32(high)
    for name, value, rounded in (("low", low, low32), ("high", high, high32)):
        if rounded is None:
            return f"{name} {value} is beyond float32's range (±3.4e38), the precision actions are computed in"
    if not low32 < high32:
        return (f"low {low} and high {high} are equal in float32, the precision actions are computed in; give "
                "bounds further apart")
    if high32 - low32 > FLOAT32_MAX:
        return f"the width high - low = {high - low:.4g} is beyond float32's range (±3.4e38)"
    return None


# The inverted gradient scales dQ/da by (distance to a bound) / (high - low). Below this width an actor output of
# ordinary size outside the bounds gives gradients whose squares overflow float32 in Adam, and the weights turn
# NaN at the first actor step (measured on Pendulum: a width of 2e-22 trains, 2e-25 does not); this leaves a
# margin of ten million.
MIN_INVERTED_WIDTH = 1.0e-15


def inverted_width_problem(low: float, high: float) -> str | None:
    """Why bounds [low, high] are too narrow for ``agent.bounding: invert``, or None. Checked where training
    resolves its bounds against the environment (``envs.env_spec``), not when a config is read: a checkpoint
    trained with a narrower range before this limit still evaluates and exports."""
    width = float(high) - float(low)
    if width >= MIN_INVERTED_WIDTH:
        return None
    return (f"the width high - low = {width:.3g} is too narrow for agent.bounding invert (below "
            f"{MIN_INVERTED_WIDTH:g}, its gradients, scaled by 1 / width, overflow float32); scale the action up "
            "in the environment (gymnasium.wrappers.RescaleAction), or set agent.bounding tanh or clip")


def _located(source: str, origins: dict[str, str], *keys: str) -> str:
    """The file, and any --set (or option such as --steps, as ``origins`` names it) that gave one of these
    keys, a key under them, or the section holding them."""
    given = [f"--set {key}" if where == "--set" else where for key, where in origins.items()
             if any(key == k or key.startswith(f"{k}.") or k.startswith(f"{key}.") for k in keys)]
    return f"{source} with {', '.join(given)}" if given else source


def _cross_checks(config: Config, source: str, origins: dict[str, str]) -> None:
    def at(*keys: str) -> str:
        return _located(source, origins, *keys)

    if not config.env.id:
        raise ConfigError(f"{at('env.id')}: env.id: missing (every preset names its gymnasium environment)")
    low, high = config.action_bounds.low, config.action_bounds.high
    if (low is None) != (high is None):
        raise ConfigError(f"{at('action_bounds')}: action_bounds: give both low and high, or neither")
    if low is not None and high is not None:
        if len(low) != len(high) or not low:
            raise ConfigError(
                f"{at('action_bounds')}: action_bounds: low has {len(low)} entries and high {len(high)}; "
                "they need one each per action dimension")
        for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
            if not lo < hi:
                raise ConfigError(
                    f"{at('action_bounds')}: action_bounds: dimension {i}: low {lo} must be < high {hi}")
            problem = float32_bounds_problem(lo, hi)
            if problem:
                raise ConfigError(f"{at('action_bounds')}: action_bounds: dimension {i}: {problem}")
    if config.replay.burn_in and not config.recurrent:
        raise ConfigError(f"{at('replay.burn_in', 'network.recurrent')}: replay.burn_in: {config.replay.burn_in} "
                          "needs network.recurrent lstm or gru")
    if config.replay.store_state and not config.recurrent:
        raise ConfigError(f"{at('replay.store_state', 'network.recurrent')}: replay.store_state: needs "
                          "network.recurrent lstm or gru")
    if config.agent.noise_sigma_final is not None and config.agent.noise_anneal_steps == 0:
        raise ConfigError(f"{at('agent.noise_anneal_steps', 'agent.noise_sigma_final')}: "
                          "agent.noise_anneal_steps: must be > 0 when noise_sigma_final is set")
    if config.agent.policy_weights == "averaged" and config.agent.target_update >= 1:
        raise ConfigError(f"{at('agent.policy_weights', 'agent.target_update')}: agent.policy_weights: averaged "
                          f"needs soft target updates (agent.target_update < 1, not {config.agent.target_update})")
    if config.agent.target_update > 1 and not float(config.agent.target_update).is_integer():
        raise ConfigError(f"{at('agent.target_update')}: agent.target_update: {config.agent.target_update} must be "
                          "< 1 (soft) or a whole number")
    if config.agent.target_update >= 2**62:  # the gradient step counter it divides is an int64
        raise ConfigError(f"{at('agent.target_update')}: agent.target_update: {config.agent.target_update:g} is too "
                          "large: a hard copy every that many gradient steps would never happen (below 2**62)")
    window = config.replay.burn_in + config.replay.sequence_length
    if window > config.replay.size:
        raise ConfigError(f"{at('replay')}: replay.size: {config.replay.size} is smaller than one window "
                          f"(burn_in + sequence_length = {window})")
    if config.replay.size < config.agent.batch_size:
        # The agent learns once the replay holds a batch's worth of transitions (windows are drawn from
        # them with replacement, so no more are needed); a smaller replay never gets there.
        raise ConfigError(f"{at('replay.size', 'agent.batch_size')}: replay.size: {config.replay.size} is smaller "
                          f"than agent.batch_size {config.agent.batch_size}; the agent would never learn")


def windows_past_the_episode(config: Config, max_episode_steps: int | None) -> str | None:
    """A recurrent window (burn_in + sequence_length) longer than the environment's episodes: the steps before
    its episode are computed, masked and never learned from, in every window, so the update costs several
    times as much for the same result. One line, or None."""
    window = config.replay.burn_in + config.replay.sequence_length
    if not config.recurrent or max_episode_steps is None or window <= max_episode_steps:
        return None
    return (f"replay.sequence_length: windows of {window} steps (burn_in + sequence_length) are longer than "
            f"{config.env.id}'s episodes ({max_episode_steps} steps at most): each holds at least "
            f"{window - max_episode_steps} step(s) before its episode, computed and masked, never learned from")


def inert_settings(config: Config) -> list[str]:
    """Settings given a value of their own (not the default) that do nothing with the rest of the config, one
    line each: the run can go on, but a user who set them expected something to change."""
    agent = config.agent
    notes = []

    def given(section: Any, key: str) -> bool:
        return getattr(section, key) != getattr(type(section)(), key)

    if agent.noise != "ou" and given(agent, "ou_theta"):
        notes.append(f"agent.ou_theta: {agent.ou_theta} does nothing with agent.noise {agent.noise} (it is the "
                     "Ornstein-Uhlenbeck noise's)")
    if agent.noise == "none":
        notes += [f"agent.{key}: {getattr(agent, key)} does nothing with agent.noise none"
                  for key in ("noise_sigma", "noise_sigma_final", "noise_anneal_steps") if given(agent, key)]
    elif agent.noise_sigma_final is None and given(agent, "noise_anneal_steps"):
        notes.append(f"agent.noise_anneal_steps: {agent.noise_anneal_steps} does nothing without "
                     "agent.noise_sigma_final (the scale to anneal to)")
    if agent.target_noise == 0 and given(agent, "target_noise_clip"):
        notes.append(f"agent.target_noise_clip: {agent.target_noise_clip} does nothing while agent.target_noise "
                     "is 0")
    elif agent.target_noise > 0 and agent.target_noise_clip == 0:
        notes.append(f"agent.target_noise_clip: 0 clips the smoothing noise to nothing: agent.target_noise "
                     f"{agent.target_noise} does nothing")
    whole_observation_critic = config.network.critic_input == "full_observation"  # feed-forward: no recurrent layer
    if whole_observation_critic and not config.recurrent and config.env.observation_indices is None \
            and config.network.history == "obs":
        notes.append("network.critic_input: full_observation is what history gives with network.recurrent none and "
                     "no env.observation_indices (the critic reads the observation either way)")
    if not config.recurrent and given(config.network, "units"):
        notes.append(f"network.units: {config.network.units} does nothing with network.recurrent none")
    for key in ("actor_lr", "critic_lr"):  # 1e0 for 1e-3, or YAML 1.1's 0x10 and 1_000 read as numbers
        if getattr(agent, key) >= 1:
            notes.append(f"agent.{key}: {getattr(agent, key):g} is a learning rate of 1 or more: Adam moves each "
                         "weight by about that much at every step, and training diverges (the presets use 1e-3)")
    if agent.warmup_actor < agent.warmup_critic:
        notes.append(f"agent.warmup_actor: {agent.warmup_actor} < agent.warmup_critic {agent.warmup_critic}: the "
                     f"actor starts learning with the critic, at env step {agent.warmup_critic}")
    notes += _budget_notes(config)
    if config.recurrent and config.replay.sequence_length == 1 and config.replay.burn_in == 0 \
            and not (whole_observation_critic and config.replay.store_state):
        # A stored state starts only the actor's windows (the state recorded while acting is the actor's); the
        # critics start from zero whatever store_state says.
        if whole_observation_critic:
            whose = "the actor's recurrent layer on its zero initial state only: its recurrent weights never learn"
        elif config.replay.store_state:
            whose = ("the critics' recurrent layers on their zero initial state only (replay.store_state starts the "
                     "actor's windows from its recorded state, not the critics'): their recurrent weights never "
                     "learn")
        else:
            whose = "the recurrent layers on their zero initial state only: their recurrent weights never learn"
        notes.append(f"replay.sequence_length: 1 with burn_in 0 trains {whose} (give a burn_in or a longer sequence)")
    indices = config.env.observation_indices or []
    repeated = sorted({i for i in indices if indices.count(i) > 1})
    if repeated:
        notes.append(f"env.observation_indices: {', '.join(map(str, repeated))} listed more than once (the component "
                     "is fed in as many times)")
    return notes


def _budget_notes(config: Config) -> list[str]:
    """What train.steps leaves undone: a run that ends within the warm-up, or before a gradient step, a hard
    copy or a delayed actor step comes."""
    agent = config.agent
    notes: list[str] = []
    steps = config.train.steps
    # Env steps 0 .. steps-1 act (random below warmup_steps); learning runs after env step n once n reaches
    # warmup_critic (warmup_actor), n = 1 .. steps.
    idle = [f"{what} (agent.{key} {getattr(agent, key)})" for key, what, after in (
        ("warmup_steps", "every action is random", steps - 1), ("warmup_critic", "the critic never learns", steps),
        ("warmup_actor", "the actor never learns", steps)) if getattr(agent, key) > after]
    if idle:
        notes.append(f"train.steps: {steps} ends within the warm-up: {', '.join(idle)}")
        return notes
    updates = gradient_steps_in_run(config)
    if updates == 0:
        notes.append(f"agent.train_interval: {agent.train_interval}: no gradient step falls within train.steps "
                     f"{steps} (learning starts at env step {max(agent.warmup_critic, agent.batch_size, 1)}, "
                     "once past warmup_critic with a batch in the replay): nothing learns")
        return notes
    if agent.target_update >= 1 and agent.target_update > updates:
        notes.append(f"agent.target_update: a hard copy every {agent.target_update:g} gradient steps never comes in "
                     f"this run's {updates}: the target networks keep their initial weights")
    if agent.policy_delay > updates:
        notes.append(f"agent.policy_delay: {agent.policy_delay} is more than this run's {updates} gradient steps: "
                     "the actor and the target networks move at most once, at the first")
    return notes


def gradient_steps_in_run(config: Config) -> int:
    """How many gradient steps a run of train.steps env steps takes: after env step n (1 .. steps), once n has
    reached warmup_critic and the replay holds a batch (a transition per env step), every train_interval-th."""
    agent = config.agent
    first = max(agent.warmup_critic, agent.batch_size, 1)
    rounds = config.train.steps // agent.train_interval - (first - 1) // agent.train_interval
    return max(rounds, 0) * agent.gradient_steps


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
        for p in sorted(folder.iterdir(), key=lambda p: Path(p.name).stem)
        if p.name.endswith(".yaml")
    }


PRESET_FILE = FileMessages(
    not_found="{shown}: preset file not found",
    unreadable="{shown}: cannot read the preset file: {reason}",
    folder="{shown}: is a folder, not a preset file",
    not_regular="{shown}: not a regular file (a device or pipe cannot be a preset)",
)


def _preset_file(preset: str, path: Path) -> Path:
    """``path`` if it is a readable regular file; otherwise a one-line ConfigError saying why not."""
    regular_file_size(path, preset, ConfigError, PRESET_FILE)
    return path


def resolve_preset_path(preset: str) -> Path:
    """A shipped preset name, or a path to a YAML file."""
    shipped = shipped_presets()
    if preset in shipped:
        return shipped[preset]
    if not preset.strip():  # Path("") is the working folder: "is a folder" would puzzle
        raise ConfigError(f"the preset name is empty; give a shipped preset ({', '.join(shipped)}) or a YAML path")
    path = Path(preset)
    looks_like_path = path.suffix in (".yaml", ".yml") or "/" in preset or os.sep in preset
    try:
        exists = looks_like_path or os.path.lexists(path)
    except ValueError:
        exists = True  # a NUL byte: _preset_file says so
    if exists:
        return _preset_file(preset, path)
    names = ", ".join(shipped)
    raise ConfigError(f"unknown preset '{preset}'{_suggest(preset, list(shipped))}; shipped presets: {names}")


# Presets are a few hundred bytes; anything this large is not one (and /dev/zero never ends).
MAX_PRESET_BYTES = 1 << 20


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (only plain data: no tag can build a Python object or run code), plus
    two checks it lacks: a key given twice in one mapping is an error (YAML would silently keep the last),
    and a scalar that its tag's constructor rejects (``2001-13-45``, ``!!float abc``) is a parse error with
    its line number rather than a bare ValueError."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    ident = (key_node.tag, key_node.value)
                    if ident in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key '{key_node.value}' given twice (first at line {seen[ident]})",
                            key_node.start_mark)
                    seen[ident] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError) as exc:
            value = node.value if isinstance(node, yaml.ScalarNode) else node.id
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {value!r} as {node.tag.rsplit(':', 1)[-1]} ({exc})",
                node.start_mark) from None


def _parse_yaml(text: str) -> Any:
    """Parse YAML safely (plain data only); every failure is a yaml.YAMLError."""
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a yaml.SafeLoader: safe_load plus checks
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


def read_preset_text(path: Path) -> str:
    """A preset file's text; a one-line ConfigError if it cannot be read, is too large or is not UTF-8."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PRESET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_PRESET_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_PRESET_BYTES // 1024} KiB; not a preset")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} on line {line})") from None


def read_yaml(path: Path) -> Any:
    text = read_preset_text(path)
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty")
    try:
        return _parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{path}: YAML does not parse{line}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML does not parse: {str(exc).splitlines()[0]}") from None


# ``--set env.kwargs.NAME=VALUE``: one keyword argument of the environment, the preset's others kept.
KWARGS_PREFIX = "env.kwargs."


def parse_override(text: str) -> tuple[str, Any]:
    """``section.key=value`` -> (dotted key, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key.startswith(KWARGS_PREFIX):
        if not key[len(KWARGS_PREFIX):].isidentifier():
            raise ConfigError(f"--set {text}: '{key[len(KWARGS_PREFIX):]}' is not a keyword argument name")
    elif key in SECTIONS:  # a whole section: --set sets one key, so the keys the preset has are not dropped
        raise ConfigError(f"--set {text}: '{key}' is a section; set its keys one by one, as {key}.KEY=VALUE "
                          f"(`rdpg presets show -v` lists them)")
    elif key not in all_keys():
        raise ConfigError(f"--set {text}: unknown key '{key}'{_suggest(key, all_keys())}")
    try:
        value = _parse_yaml(raw) if raw.strip() else None
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"--set {text}: the value does not parse as YAML: {problem}") from None
    except yaml.YAMLError:
        raise ConfigError(f"--set {text}: the value does not parse as YAML") from None
    # On the command line 1e-3 means a number, whatever YAML 1.1 says, alone or in a list ([-1e-3]).
    value = _numbers_as_numbers(value)
    lost = _literal_lost_in_parsing(raw, key) if _holds_zero_or_infinity(value) else None
    if lost:
        raise ConfigError(f"--set {key}: {lost[0]} {lost[1]}")
    return key, value


def _holds_zero_or_infinity(value: Any) -> bool:
    if isinstance(value, list):
        return any(_holds_zero_or_infinity(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_zero_or_infinity(v) for v in value.values())
    return isinstance(value, float) and (value == 0 or math.isinf(value))


def _literal_lost_in_parsing(raw: str, key: str) -> tuple[str, str] | None:
    """A number typed in ``raw`` that parsing turned into 0 or infinity (1e-400, 1e400), and why: the message
    names it as typed, not the 0.0 or inf it became. Read from the YAML's scalars as written (a comment or a
    string holding such text is none); an environment keyword is a float64, not float32."""
    try:
        nodes = [yaml.compose(raw, Loader=_Loader)]
    except yaml.YAMLError:
        return None
    while nodes:
        node = nodes.pop()
        if isinstance(node, yaml.SequenceNode):
            nodes += node.value
        elif isinstance(node, yaml.MappingNode):
            nodes += [value for _, value in node.value]
        elif isinstance(node, yaml.ScalarNode) and (_looks_numeric(node.value) or node.tag.endswith(":float")):
            try:
                number = float(node.value.replace("_", ""))
            except ValueError:  # YAML's .inf, .nan: typed as such
                continue
            mantissa = node.value.lower().split("e")[0]
            lost_to_zero = number == 0 and any(digit in mantissa for digit in "123456789")
            if not (lost_to_zero or math.isinf(number)):
                continue
            if key.startswith(KWARGS_PREFIX):
                return node.value, "is beyond a float's range: it parses as " + ("0.0" if lost_to_zero else "inf")
            return node.value, _float32_problem(FLOAT32_TINY / 2 if lost_to_zero else number)
    return None


def _numbers_as_numbers(value: Any) -> Any:
    if isinstance(value, str) and _looks_numeric(value):
        return float(value)
    if isinstance(value, list):
        return [_numbers_as_numbers(v) for v in value]
    return value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset's data with each ``--set`` applied: ``section.key`` replaces that key's value (a whole
    mapping for ``env.kwargs``); ``env.kwargs.NAME`` sets one keyword argument and keeps the others."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for dotted, value in overrides.items():
        if dotted.startswith(KWARGS_PREFIX):
            env = out.get("env")
            env = dict(env) if isinstance(env, dict) else {}
            kwargs = env.get("kwargs")
            if kwargs is not None and not isinstance(kwargs, dict):
                raise ConfigError(f"--set {dotted}: env.kwargs is not a mapping in the preset")
            env["kwargs"] = {**(kwargs or {}), dotted[len(KWARGS_PREFIX):]: value}
            out["env"] = env
            continue
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


NOT_SET = object()


def value_at(data: dict[str, Any], dotted: str) -> Any:
    """A config mapping's value at a ``--set`` key (``env.kwargs.NAME`` included), as ``apply_overrides``
    writes it; NOT_SET where it has none."""
    node: Any = data
    for part in dotted.split(".", 2):
        if not isinstance(node, dict) or part not in node:
            return NOT_SET
        node = node[part]
    return node


def key_locator(preset: str, overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
                ) -> typing.Callable[[Exception], Exception]:
    """For checks made after loading (against the environment: its id, kwargs, bounds): an error about a key,
    ``"action_bounds: ..."``, prefixed with where that key came from, as load_config's own errors are: the
    preset file, and any --set that gave the key or a key under it (``flags``: keys given by another option,
    e.g. ``{"train.steps": "--steps"}``)."""
    path = str(resolve_preset_path(preset))
    origins = {key: (flags or {}).get(key, "--set") for key in overrides or {}}

    def locate(error: Exception) -> Exception:  # a ConfigError, or a missing simulator's EnvironmentSetupError
        key = str(error).split(":", 1)[0]
        section = key.split(".", 1)[0]
        # Not about a key of the preset (a run folder named like one: "mine: another rdpg train is using ...").
        if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", key) or section not in (*SECTIONS, *TOP_LEVEL_SCALARS):
            return error
        return type(error)(f"{_located(path, origins, *(getattr(error, 'keys', ()) or (key,)))}: {error}")

    return locate


# What env.kwargs may say of rendering: rdpg asks for rgb_array frames itself for rdpg evaluate --video.
RENDER_MODES_ALLOWED = (None, "rgb_array")


def load_config(preset: str, overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
                ) -> Config:
    """Load a preset by name or path, apply overrides, validate: a new run's config. A bad overridden value is
    reported as ``--set key`` (or the option in ``flags`` that gave it, e.g. ``--steps``), not as the file's."""
    path = resolve_preset_path(preset)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {_describe(data)}")
    overrides = overrides or {}
    data = apply_overrides(data, overrides)
    data.setdefault("name", path.stem)
    origins = {key: (flags or {}).get(key, "--set") for key in overrides}
    one_kwarg = [key for key in overrides if key.startswith(KWARGS_PREFIX)]
    if one_kwarg:  # a bad value in the mapping may be the file's or a --set's: both are named
        origins.setdefault("env.kwargs", f"{path} with --set {', '.join(one_kwarg)}")
    config = config_from_dict(data, source=str(path), origins=origins)
    # Seeds enter numpy's SeedSequence as 32-bit words: 2**32 would give seed 0's episodes again. Checked on
    # what users give, not on stored configs (a checkpoint of an earlier version must still load).
    for key in ("train.seed", "train.eval_seed"):
        value = getattr(config.train, key.split(".")[1])
        if value >= 2**32:
            raise ConfigError(f"{_at(origins.get(key, str(path)), key)}: {value} must be in [0, 2**32)")
    render_mode = config.env.kwargs.get("render_mode")
    if render_mode not in RENDER_MODES_ALLOWED:
        # "human" opens a window (without a display the process aborts in SDL, exit 134). New runs only: a
        # stored config that has it still loads, and make_env leaves it out.
        raise ConfigError(f"{_at(origins.get('env.kwargs', str(path)), 'env.kwargs')}: render_mode "
                          f"{_show(render_mode)} is rdpg's to choose (frames for rdpg evaluate --video, none while "
                          "training); leave it out")
    if config.replay.sequence_length > 1 and not config.recurrent:
        # A feed-forward update on [B, L] windows is the update on B * L single transitions: a batch size in
        # disguise, not the recurrence it looks like. Refused for new runs only: a stored config that has it
        # (written before this check) still evaluates, exports and resumes as it trained.
        where = _located(str(path), origins, "replay.sequence_length", "network.recurrent")
        raise ConfigError(f"{where}: replay.sequence_length: {config.replay.sequence_length} needs "
                          "network.recurrent lstm or gru (a feed-forward agent learns from single transitions; "
                          "agent.batch_size sets how many)")
    return config
