"""Environment construction: gymnasium env, time limit, observation masking, action-space checks."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rdpg_cli.config import RENDER_MODES_ALLOWED, Config, float32_bounds_problem, inverted_width_problem
from rdpg_cli.errors import ConfigError, EnvironmentSetupError, MissingSimulator, TrainingFault, first_line, reason
from rdpg_cli.extras import install_hint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvSpec:
    """What the agent needs to know about an environment."""

    env_id: str
    observation_dim: int
    action_dim: int
    low: np.ndarray
    high: np.ndarray
    # Components of the environment's whole observation, before env.observation_indices (not given: the
    # observation's): what a critic over the full observation (network.critic_input) reads.
    full_observation_dim: int = 0
    # The environment's time limit (env.max_episode_steps or its own); None where not known (a checkpoint's).
    max_episode_steps: int | None = None

    def __post_init__(self) -> None:
        if not self.full_observation_dim:
            object.__setattr__(self, "full_observation_dim", self.observation_dim)


class SelectObservation(gym.ObservationWrapper):
    """Keep only some observation components: turns a fully observed task into a partially observed one."""

    def __init__(self, env: gym.Env, indices: list[int]):
        super().__init__(env)
        self.indices = np.asarray(indices, dtype=np.int64)
        space = env.observation_space
        with np.errstate(over="ignore"):  # float64 bounds beyond float32's range become its infinities
            low, high = space.low[self.indices].astype(np.float32), space.high[self.indices].astype(np.float32)
        # Cast first: gymnasium warns ("precision lowered") when handed float64 bounds for a float32 space.
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)

        self.full_observation: np.ndarray | None = None  # the whole one behind the last observation returned

    def observation(self, observation: np.ndarray) -> np.ndarray:
        # A copy: the environment may hand out the same array every step. Asymmetric critics read it.
        self.full_observation = np.array(observation, dtype=np.float32)
        return self.full_observation[self.indices]


def full_observation_space(env: gym.Env) -> gym.spaces.Space:
    """The observation space before ``SelectObservation`` (the environment's own)."""
    return env.env.observation_space if isinstance(env, SelectObservation) else env.observation_space


# The rdpg extra (pyproject.toml) that installs the simulator behind each gymnasium family of environments.
SIMULATOR_EXTRAS = {"gymnasium.envs.box2d": "box2d", "gymnasium.envs.mujoco": "mujoco"}


def required_extra(env_id: str) -> str | None:
    """The rdpg extra that installs what ``env_id`` simulates with (None: nothing beyond rdpg's own needs)."""
    try:
        entry_point = gym.spec(env_id).entry_point
    except gym.error.Error:
        return None
    if not isinstance(entry_point, str):
        return None
    return next((extra for prefix, extra in SIMULATOR_EXTRAS.items() if entry_point.startswith(prefix)), None)


def _missing_dependency(env_id: str, exc: Exception) -> str:
    extra = required_extra(env_id)
    if extra is not None:
        return f"env.id: {env_id} needs the '{extra}' extra, which is not installed: {install_hint(extra)}"
    return f"env.id: {env_id} needs a package that is not installed ({reason(exc)})"


def _route_simulator_warnings(env_id: str) -> None:
    """MuJoCo prints its warnings (gymnasium's models use attributes it deprecates) on the terminal, past
    --quiet, and appends them to MUJOCO_LOG.TXT in the working folder. Its user handler takes them instead:
    they go to rdpg's log as debug lines (--verbose shows them), nothing is written to the folder."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        return  # reported by gym.make below
    if "mujoco" not in str(spec.entry_point):
        return
    try:
        import mujoco
    except ImportError:
        return  # gym.make reports the missing extra
    except Exception as exc:  # MUJOCO_GL naming a library this machine lacks (osmesa): mujoco fails on import
        chosen = os.environ.get("MUJOCO_GL")
        hint = f"; MUJOCO_GL={chosen} needs its OpenGL library" if chosen else ""
        raise EnvironmentSetupError(
            f"env.id: {env_id}: MuJoCo cannot start ({type(exc).__name__}: {first_line(exc)}){hint}") from None
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(lambda text: log.debug("MuJoCo: %s", text.strip()))


def _import_env_module(env_id: str) -> None:
    """``env.id: "my_envs:MyArm-v0"`` names a module that registers the environment when imported. It is
    imported here, not by gymnasium, so that a module that is missing or fails is named as such (gymnasium's
    error blames the environment's arguments). The folder rdpg runs from is not on the ``rdpg`` command's
    import path (as it is for ``python -m``): it is put last, so a module there is found and an installed
    package of the same name still wins."""
    if ":" not in env_id:
        return
    module = env_id.split(":", 1)[0]
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module.split(".")[0] and exc.name != module:
            raise MissingSimulator(_missing_dependency(env_id, exc)) from None  # a package it imports
        raise ConfigError(f"env.id: {env_id}: no module {module!r} (put {module.replace('.', '/')}.py in the folder "
                          "rdpg runs from, or its folder on PYTHONPATH)") from None
    except Exception as exc:  # the user's module: a SyntaxError, or anything it raises when imported
        raise ConfigError(f"env.id: {env_id}: importing {module} raised {type(exc).__name__}: "
                          f"{first_line(exc)}") from None


_SHOWN_WARNINGS: set[tuple[type, str]] = set()  # the environment's warnings make_env has shown


def make_env(config: Config, render_mode: str | None = None) -> gym.Env:
    """Build the preset's environment (unseeded: seed it with ``reset(seed=...)``)."""
    kwargs = dict(config.env.kwargs)
    if kwargs.get("render_mode") not in RENDER_MODES_ALLOWED:  # a stored config of before they were refused
        del kwargs["render_mode"]
    if config.env.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.env.max_episode_steps
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    _route_simulator_warnings(config.env.id)
    _import_env_module(config.env.id)
    try:
        # gymnasium warns before some of its errors ("Pendulum-v0 is out of date", then "deprecated"): the
        # warnings are shown only when the environment was made, so that a refusal stays one line.
        with warnings.catch_warnings(record=True) as caught:
            env = gym.make(config.env.id, **kwargs)
        for warning in caught:
            # Once per process, as Python shows them: catch_warnings forgets which were shown already, and
            # rdpg makes its environment several times (training, evaluation, a check).
            key = (warning.category, str(warning.message))
            if key not in _SHOWN_WARNINGS:
                _SHOWN_WARNINGS.add(key)
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    except gym.error.NameNotFound:
        raise ConfigError(f"env.id: unknown environment {config.env.id!r}") from None
    except gym.error.DependencyNotInstalled as exc:
        raise MissingSimulator(_missing_dependency(config.env.id, exc)) from None
    except gym.error.Error as exc:
        raise ConfigError(f"env.id: {config.env.id!r}: {exc}") from None
    except TypeError as exc:
        if render_mode is not None and "render_mode" in str(exc):
            raise EnvironmentSetupError(f"--video: {config.env.id} cannot draw frames: it takes no render_mode "
                                        "(gymnasium's rendering argument)") from None
        if not config.env.kwargs:
            raise EnvironmentSetupError(f"env.id: {config.env.id}'s constructor raised TypeError: "
                                        f"{first_line(exc)}") from None
        raise ConfigError(f"env.kwargs: {config.env.id} rejects them: {exc}") from None
    except ImportError as exc:
        raise MissingSimulator(_missing_dependency(config.env.id, exc)) from None
    except Exception as exc:  # an environment's constructor may raise anything at values it cannot take
        if not config.env.kwargs:  # nothing of the user's to blame but the environment itself
            raise EnvironmentSetupError(f"env.id: {config.env.id}'s constructor raised {type(exc).__name__}: "
                                        f"{first_line(exc)}") from None
        raise ConfigError(f"env.kwargs: {config.env.id} cannot be made with {config.env.kwargs}: "
                          f"{type(exc).__name__}: {first_line(exc)}") from None
    # An integer Box is a grid of discrete actions: the actor's continuous ones would not be in it.
    if not isinstance(env.action_space, gym.spaces.Box) or len(env.action_space.shape) != 1 \
            or env.action_space.shape[0] == 0 or not np.issubdtype(env.action_space.dtype, np.floating):
        env.close()
        raise ConfigError(
            f"env.id: {config.env.id} has action space {env.action_space}; rdpg needs continuous (Box) actions, at "
            "least one (a Box of floats)")
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        env.close()
        raise ConfigError(f"env.id: {config.env.id} has observation space {space}; rdpg needs a flat Box")
    if space.shape[0] == 0:
        env.close()
        raise ConfigError(f"env.id: {config.env.id} has observation space {space}, with no components")
    if env.spec is None or env.spec.max_episode_steps is None:
        # Evaluation runs whole episodes: one that never ends would hang every evaluation (and a stop with it).
        env.close()
        raise ConfigError(f"env.max_episode_steps: {config.env.id} has no time limit; set one (an episode "
                          "length that ends every episode)")
    indices = config.env.observation_indices
    if indices is not None:
        dim = space.shape[0]
        bad = [i for i in indices if i >= dim]
        if bad or not indices:
            env.close()
            raise ConfigError(
                f"env.observation_indices: {indices} does not fit the {dim} observation components of "
                f"{config.env.id}")
        env = SelectObservation(env, indices)
    return env


def env_spec(config: Config, env: gym.Env) -> EnvSpec:
    """Resolve the action bounds against the env's action space and check them."""
    space = env.action_space
    dim = space.shape[0]
    env_low = space.low.astype(np.float64)
    env_high = space.high.astype(np.float64)
    if config.action_bounds.low is None:
        low, high = env_low, env_high
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ConfigError(
                f"action_bounds: {config.env.id} has unbounded actions; give action_bounds.low and high")
        flat = [i for i in range(dim) if not low[i] < high[i]]
        if flat:  # the inverted gradient divides by high - low
            raise ConfigError(
                f"action_bounds: {config.env.id}'s action dimension {flat[0]} has low {low[flat[0]]} >= high "
                f"{high[flat[0]]}; give action_bounds.low and high (a dimension that cannot move is not an action)")
        for i in range(dim):  # a float64 space can be finite and still beyond what float32 holds
            problem = float32_bounds_problem(float(low[i]), float(high[i]))
            if problem:
                raise ConfigError(f"action_bounds: {config.env.id}'s action dimension {i}: {problem}; give "
                                  "action_bounds.low and high")
        low, high = float32_inside(low, high)
    else:
        low = np.asarray(config.action_bounds.low, dtype=np.float64)
        high = np.asarray(config.action_bounds.high, dtype=np.float64)
        if low.shape[0] != dim:
            raise ConfigError(
                f"action_bounds: {low.shape[0]} entries but {config.env.id} has {dim} action dimensions")
        for i in range(dim):
            if _outside_space(low[i], high[i], space, i):
                raise ConfigError(
                    f"action_bounds: dimension {i}: [{low[i]}, {high[i]}] lies outside the action space "
                    f"[{env_low[i]}, {env_high[i]}] of {config.env.id}")
    if config.agent.bounding == "invert":
        whose = "action_bounds" if config.action_bounds.low is not None else f"{config.env.id}'s action space"
        for i in range(dim):
            problem = inverted_width_problem(float(low[i]), float(high[i]))
            if problem:
                raise ConfigError(f"action_bounds: dimension {i} of {whose}: {problem}")
    return EnvSpec(
        env_id=config.env.id,
        observation_dim=int(env.observation_space.shape[0]),
        action_dim=int(dim),
        low=low.astype(np.float32),
        high=high.astype(np.float32),
        full_observation_dim=int(full_observation_space(env).shape[0]),
        max_episode_steps=getattr(getattr(env, "spec", None), "max_episode_steps", None),
    )


def _outside_space(low: float, high: float, space: gym.spaces.Box, i: int) -> bool:
    """Whether bounds [low, high] reach outside dimension ``i`` of the action space, compared in float32, the
    precision the agent uses: 0.7 written in a preset is the space's float32 0.7, not outside it (a float64
    space's too, whose 0.7 float32 rounds up)."""
    with np.errstate(over="ignore"):  # beyond float32's range: its infinity, without numpy's warning
        return bool(np.float32(low) < np.float32(space.low[i]) or np.float32(high) > np.float32(space.high[i]))


def float32_inside(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 bounds in float32, each moved one step inward where rounding took it outward: a float64 action
    space's 0.1 is 0.10000000149 in float32, and actions up to it would not be in the space."""
    low32, high32 = np.asarray(low).astype(np.float32), np.asarray(high).astype(np.float32)
    low32 = np.where(low32.astype(np.float64) < low, np.nextafter(low32, np.float32(np.inf)), low32)
    high32 = np.where(high32.astype(np.float64) > high, np.nextafter(high32, np.float32(-np.inf)), high32)
    return low32, high32


def _try_kwargs(config: Config, env: gym.Env, spec: EnvSpec) -> None:
    """With ``env.kwargs`` given, reset and take one step, so a value the environment only trips over when it
    runs (``g: abc`` for Pendulum) is bad input reported before a run folder exists, not a failed run."""
    from rdpg_cli.evaluation import checked_reset, checked_step  # evaluation builds on this module

    if not config.env.kwargs:
        return
    try:
        checked_reset(env, 0)
        checked_step(env, ((spec.low + spec.high) / 2).astype(env.action_space.dtype))
    except TrainingFault as exc:
        raise ConfigError(f"env.kwargs: {config.env.id} fails with {config.env.kwargs}: {exc}") from None


def require_policy_fits(env: gym.Env, config: Config, policy: tuple[int, int], source: str) -> None:
    """Refuse a trained policy of ``policy`` (observations, actions) for an env of other sizes, naming both, or
    one whose action bounds (``config``'s, from training) no longer lie inside the env's action space: an
    environment changed since, which the policy would drive outside its space."""
    env_id = config.env.id
    have = (int(env.observation_space.shape[0]), int(env.action_space.shape[0]))
    if have != tuple(policy):
        raise EnvironmentSetupError(
            f"{source}: its policy takes {_count(policy[0], 'observation')} and gives "
            f"{_count(policy[1], 'action')}, but {env_id} has {_count(have[0], 'observation')} and "
            f"{_count(have[1], 'action')}")
    low, high = config.action_bounds.low, config.action_bounds.high
    if low is None or high is None:
        return
    space = env.action_space
    for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
        if _outside_space(lo, hi, space, i):
            raise EnvironmentSetupError(
                f"{source}: its actions span [{lo}, {hi}] in dimension {i}, outside the action space "
                f"[{float(space.low[i])}, {float(space.high[i])}] of {env_id} (the environment changed since "
                "it was trained)")


def require_whole_observation_fits(config: Config, spec: EnvSpec, trained: int, source: str) -> None:
    """Refuse to resume a critic over the whole observation (``network.critic_input``) on an environment whose
    whole observation has another size: the policy's selected components may still fit, the critic would not."""
    if config.network.critic_input == "full_observation" and spec.full_observation_dim != trained:
        raise EnvironmentSetupError(
            f"{source}: its critic reads the whole observation of {_count(trained, 'component')}, but "
            f"{config.env.id} now has {spec.full_observation_dim} (the environment changed since it was trained)")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def resolve_bounds(config: Config, policy: tuple[int, int] | None = None, source: str = ""
                   ) -> tuple[Config, EnvSpec]:
    """Fill the preset's bounds from the env when left out, so the saved config is complete. With ``policy``
    (a resumed run's observations and actions, from ``source``): refuse an env whose sizes changed since,
    before its stored bounds are found not to fit."""
    env = make_env(config)
    try:
        if policy is not None:
            require_policy_fits(env, config, policy, source)
        spec = env_spec(config, env)
        _try_kwargs(config, env, spec)
    finally:
        env.close()
    if config.action_bounds.low is None:
        config = config.replace(
            "action_bounds", low=[float(x) for x in spec.low], high=[float(x) for x in spec.high])
    return config, spec
