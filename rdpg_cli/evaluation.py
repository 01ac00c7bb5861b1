"""Deterministic evaluation: fixed per-episode seeds, recurrent state reset at every episode start."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rdpg_cli.config import FLOAT32_MAX, Config
from rdpg_cli.envs import make_env, require_policy_fits
from rdpg_cli.seeding import EVAL_EPISODES, episode_seed
from rdpg_cli.signals import stop_if_a_signal_was_swallowed
from rdpg_cli.errors import PolicyFault, TrainingFault, first_line, one_line


class Policy(Protocol):
    def reset(self) -> None: ...
    def act(self, observation: np.ndarray) -> np.ndarray: ...


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]
    seed: int
    # Actor outputs before clipping, for the out-of-bounds report (empty when the policy does not say).
    raw_actions: list[np.ndarray] = field(default_factory=list)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    def as_dict(self) -> dict:
        return {
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "min_return": float(np.min(self.returns)),
            "max_return": float(np.max(self.returns)),
            "mean_length": float(np.mean(self.lengths)),
            "returns": [float(r) for r in self.returns],
            "lengths": [int(n) for n in self.lengths],
            "episodes": len(self.returns),
            "seed": self.seed,
        }


class Recorder(Protocol):
    """Follows the episodes to draw them (``rdpg_cli.recording.VideoRecorder``)."""

    def reset(self, seed: int) -> None: ...
    def step(self, action: np.ndarray, observation: np.ndarray) -> None: ...


def evaluate(policy: Policy, config: Config, episodes: int, seed: int, env=None,
             record_raw: bool = False, recorder: Recorder | None = None,
             progress: Callable[[EvalResult, int], None] | None = None) -> EvalResult:
    """Run ``episodes`` deterministic episodes; episode i resets with a seed derived from (seed, i), so two
    evaluations with the same seed see the same start states whatever happened before. A ``recorder`` is
    given each episode's seed and each step's action and observation; ``progress`` the result so far and
    ``episodes`` after each episode."""
    own_env = env is None
    if own_env:
        env = make_env(config)
    result = EvalResult(returns=[], lengths=[], seed=seed)
    try:
        for episode in range(episodes):
            start_seed = episode_seed(seed, EVAL_EPISODES, episode)
            observation = checked_reset(env, start_seed, "evaluation: ")
            policy.reset()
            total, length, done = 0.0, 0, False
            if recorder is not None:
                recorder.reset(start_seed)
            while not done:
                try:
                    action = policy.act(observation)
                except TrainingFault as exc:
                    raise PolicyFault(f"evaluation: {exc}") from None
                shown = non_finite(action)  # an exported policy, say: the environment must not get it
                if shown is not None:
                    raise PolicyFault(
                        f"evaluation: the policy's action is non-finite ({shown}): its weights diverged")
                if record_raw:
                    result.raw_actions.append(np.array(getattr(policy, "last_raw_action", action)))
                observation, reward, terminated, truncated = checked_step(env, action, "evaluation: ")
                total += reward
                length += 1
                done = terminated or truncated
                if recorder is not None:
                    recorder.step(action, observation)
            result.returns.append(total)
            result.lengths.append(length)
            stop_if_a_signal_was_swallowed()  # an episode can take minutes
            if progress is not None:
                progress(result, episodes)
    finally:
        if own_env:
            env.close()
    return result


def check_environment(config: Config, observation_dim: int, action_dim: int, source: str) -> None:
    """Refuse a policy made for other spaces than the environment ``config`` builds today (a custom env whose
    observation changed since training, a file whose env id names another task), before anything runs:
    otherwise the first step fails deep inside a matrix product. ``observation_dim`` is what the policy
    takes: after the config's masking for a checkpoint, raw for an export (whose config masks nothing)."""
    env = make_env(config)
    try:
        require_policy_fits(env, config, (observation_dim, action_dim), source)
    finally:
        env.close()


def non_finite(value) -> str | None:
    """None when every element of ``value`` is finite; otherwise ``value`` printed for an error message."""
    array = np.asarray(value, np.float64)
    return None if np.all(np.isfinite(array)) else np.array2string(array, precision=4)


def checked_reset(env, seed: int, where: str = "") -> np.ndarray:
    """The observation ``env.reset(seed=seed)`` starts from, checked; a reset that raises, or answers with
    anything but gymnasium's ``(observation, info)``, is a TrainingFault naming it."""
    try:
        answer = env.reset(seed=seed)
    except (Exception, SystemExit) as exc:  # the environment's own code: any failure is one line, not a traceback
        raise TrainingFault(f"{where}the environment's reset {_failure(exc)}") from None
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise TrainingFault(f"{where}the environment's reset returned {_described(answer)}, not gymnasium's "
                            "(observation, info)")
    return checked_observation(answer[0], env, where)


def checked_step(env, action: np.ndarray, where: str = "") -> tuple[np.ndarray, float, bool, bool]:
    """``env.step(action)`` as (observation, reward, terminated, truncated), each checked; a step that raises,
    or answers with anything but gymnasium's five values, is a TrainingFault naming it."""
    if env.action_space.dtype == np.float16:  # float32 actions are not in a float16 space: given in its precision
        action = np.asarray(action).astype(np.float16)
    try:
        answer = env.step(action)
    except (Exception, SystemExit) as exc:  # a broken environment must not lose the run, nor end it silently
        raise TrainingFault(f"{where}the environment {_failure(exc)}") from None
    if not isinstance(answer, tuple) or len(answer) != 5:
        raise TrainingFault(f"{where}the environment's step returned {_described(answer)}, not gymnasium's "
                            "(observation, reward, terminated, truncated, info)")
    observation, reward, terminated, truncated, _ = answer
    return (checked_observation(observation, env, where), checked_reward(reward, where),
            checked_flag(terminated, "terminated", where), checked_flag(truncated, "truncated", where))


def _failure(exc: BaseException) -> str:
    """What the environment's code did, for a one-line error: raised what, or called sys.exit (which would end
    rdpg as if the run had finished, with the environment's status)."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    message = first_line(exc)
    return f"raised {type(exc).__name__}{': ' + message if message else ''}"


def checked_flag(value, name: str, where: str = "") -> bool:
    """``terminated`` or ``truncated`` as a bool: a bool, numpy's, or one number 0 or 1 (in an array or not);
    anything else (several values, None, a string) is a TrainingFault naming it, where ``bool()`` would raise
    a traceback or guess."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    try:
        array = np.asarray(value) if not isinstance(value, str | bytes) else np.asarray(None)
    except ValueError:  # ragged: [1, [2, 3]]
        array = np.asarray(None)
    if array.size == 1 and (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)) \
            and array.reshape(()).item() in (0, 1):
        return bool(array.reshape(()).item())
    raise TrainingFault(f"{where}the environment returned {name} {one_line(str(value))[:80]}, not one bool")


def _described(answer) -> str:
    if isinstance(answer, tuple):
        return f"{len(answer)} value{'' if len(answer) == 1 else 's'}"
    return f"a {type(answer).__name__}"


def checked_observation(observation, env, where: str = "") -> np.ndarray:
    """The observation as float32, or a TrainingFault naming what is wrong with it: not numbers, another shape
    than the environment's observation space, non-finite values. The environment's fault, named before the
    policy or the replay memory meets it."""
    try:
        with np.errstate(over="ignore"):  # beyond float32's range: named below, not numpy's warning
            array = np.asarray(observation, np.float32)
    except (TypeError, ValueError):
        raise TrainingFault(f"{where}the environment returned an observation that is not numbers: "
                            f"{str(observation)[:80]}") from None
    expected = env.observation_space.shape
    if array.shape != expected:
        raise TrainingFault(f"{where}the environment returned an observation of shape {list(array.shape)}, "
                            f"not its observation space's {list(expected)}")
    shown = non_finite(observation)
    if shown is not None:
        raise TrainingFault(f"{where}the environment returned a non-finite observation ({shown})")
    if not np.all(np.isfinite(array)):
        raise TrainingFault(f"{where}the environment returned an observation beyond float32's range "
                            f"({np.array2string(np.asarray(observation, np.float64), precision=4)}), the "
                            "precision rdpg computes in; scale it down")
    return array


def checked_reward(reward, where: str = "") -> float:
    """The reward as a float (a one-element array is taken as its element), or a TrainingFault naming it."""
    if reward is None:  # numpy reads None as NaN: "non-finite reward" would mislead
        raise TrainingFault(f"{where}the environment returned reward None, not one number")
    try:
        value = float(np.asarray(reward, np.float64).reshape(()))
    except (TypeError, ValueError):
        raise TrainingFault(f"{where}the environment returned reward {str(reward)[:80]!s}, not one number") from None
    if not math.isfinite(value):
        raise TrainingFault(f"{where}the environment returned a non-finite reward ({value})")
    if abs(value) > FLOAT32_MAX:
        raise TrainingFault(f"{where}the environment returned reward {value:.4g}, beyond float32's range, the "
                            "precision rdpg computes in; scale it down (agent.reward_scale scales it too late)")
    return value
