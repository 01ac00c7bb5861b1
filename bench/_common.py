"""Shared helpers of the benchmark scripts: the settings they measure, the machine and its load, medians.

The scripts run from a checkout (``python bench/NAME.py``); none of this is part of the installed package.
The settings here are those issue 6 names: Pendulum-v1, networks [256, 256], batch 256, TD3 options on.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # ``python bench/x.py`` puts bench/ on the path, not the repository root
    sys.path.insert(0, str(REPO))

# Far past any window measured: no evaluation, metrics row or checkpoint lands inside a timed window.
NEVER = 10**9

# The feed-forward settings every figure refers to (the ``pendulum`` preset plus these ``--set``s).
# SB3's TD3 is given the same numbers in bench/throughput.py.
THROUGHPUT_SETS: dict[str, Any] = {
    "agent.batch_size": 256,
    "agent.gamma": 0.99,
    "agent.target_update": 0.005,  # soft rate tau
    "agent.actor_lr": 1.0e-3,
    "agent.critic_lr": 1.0e-3,
    "agent.warmup_steps": 1000,  # uniform random actions (SB3: learning_starts)
    "agent.warmup_critic": 1000,
    "agent.warmup_actor": 1000,
    "agent.noise": "gaussian",
    "agent.noise_sigma": 0.1,  # x half the action range
    "agent.train_interval": 1,
    "agent.gradient_steps": 1,
    "agent.twin_critics": True,
    "agent.policy_delay": 2,
    "agent.target_noise": 0.2,  # x half the action range
    "agent.target_noise_clip": 0.5,
    "network.actor_layers": [256, 256],
    "network.critic_layers": [256, 256],
    "network.recurrent": "none",
    "replay.size": 1_000_000,
}

# The recurrent update of issue 6: LSTM-128, batch 32, sequence 32, burn-in 0; the rest as above.
RECURRENT_SETS: dict[str, Any] = {
    **THROUGHPUT_SETS,
    "agent.batch_size": 32,
    "network.recurrent": "lstm",
    "network.units": 128,
    "network.history": "obs+prev_action",
    "replay.sequence_length": 32,
    "replay.burn_in": 0,
}

# pendulum-novel's preset of before (2026-11-27): the critic reads the history through its own LSTM, rewards scaled
# down (with another preset: that preset's critic reading the history, not its own of before).
RECURRENT_CRITIC_SETS: dict[str, Any] = {
    "network.critic_input": "history",
    "network.critic_layers": [128],
    "agent.reward_scale": 0.01,
}

QUIET_RUN_SETS: dict[str, Any] = {
    "train.eval_every": NEVER,
    "train.log_every": NEVER,
    "train.checkpoint_every": NEVER,
    "train.eval_episodes": 1,
    "train.save_replay": False,
}


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up chatter and size its thread pools as ``rdpg`` does (the environment can
    override both); call before anything imports it."""
    from rdpg_cli.threads import default_thread_pools

    default_thread_pools()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def make_config(sets: dict[str, Any], extra: dict[str, Any] | None = None, preset: str = "pendulum"):
    """The preset with ``--set``-style overrides, bounds resolved: ``(config, spec)``."""
    from rdpg_cli.config import load_config
    from rdpg_cli.envs import resolve_bounds

    return resolve_bounds(load_config(preset, {**sets, **(extra or {})}))


def add_set_option(parser) -> None:
    """The ``--set KEY=VALUE`` option every bench script that trains takes (repeatable)."""
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="extra override for every run, as `rdpg train --set` (repeat)")


def sets_text(sets: dict[str, Any]) -> str:
    """The overrides for a results header: ``  key=value`` each."""
    return "".join(f"  {key}={value}" for key, value in sets.items())


def parse_sets(values: list[str] | None) -> dict[str, Any]:
    """``--set section.key=value`` options of a bench script, parsed as the CLI parses them."""
    from rdpg_cli.config import parse_override

    return dict(parse_override(text) for text in values or [])


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def cpu_text() -> str:
    flags = set()
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    isa = [name for name, flag in [("AVX-512", "avx512f"), ("AMX", "amx_tile")] if flag in flags]
    return f"{model}, {os.cpu_count()} cores" + (f", {' + '.join(isa)}" if isa else "")


def header(title: str) -> None:
    print(f"# {title}")
    print(f"# machine: {cpu_text()}; python {platform.python_version()}")
    print(f"# {load_text()} at start")


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """``median (min-max)`` of a list of figures."""
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def rdpg_command() -> list[str]:
    """The installed ``rdpg`` console script beside this interpreter (the venv's)."""
    script = Path(sys.executable).parent / "rdpg"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rdpg_cli"]


def fill_replay(config, spec, steps: int, seed: int = 0):
    """A replay memory holding ``steps`` transitions of uniform random actions on the real environment
    (episode boundaries included), for benchmarks that need realistic batches. With a critic over the whole
    observation (``network.critic_input``) it holds whole observations, as the trainer's does."""
    import numpy as np

    from rdpg_cli.envs import SelectObservation, make_env
    from rdpg_cli.replay import ReplayBuffer

    env = make_env(config)
    whole = config.network.critic_input == "full_observation" and isinstance(env, SelectObservation)

    def stored(observation):
        return env.full_observation if whole else observation

    rng = np.random.default_rng(seed)
    width = spec.full_observation_dim if whole else spec.observation_dim
    replay = ReplayBuffer(max(steps, 1), width, spec.action_dim)
    observation = stored(env.reset(seed=seed)[0])
    for _ in range(steps):
        action = rng.uniform(spec.low, spec.high).astype(np.float32)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        next_observation = stored(next_observation)
        replay.add(observation, action, float(reward), next_observation, terminated, truncated)
        observation = next_observation
        if terminated or truncated:
            observation = stored(env.reset()[0])
    env.close()
    return replay
