"""Shared helpers: tiny training settings and running the real ``rdpg`` entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rdpg_cli.threads import default_thread_pools

# In-process tests run TensorFlow with the thread pools the CLI uses (before anything imports it).
default_thread_pools()

# A few hundred env steps with 16-unit networks: seconds, not minutes, yet every code path runs. One gradient
# step per env step and the online policy, as the tests written for them expect (the `pendulum` preset takes
# two and the averaged policy; tests of those set them).
TINY = [
    "--set", "agent.gradient_steps=1", "--set", "agent.policy_weights=online",
    "--set", "network.actor_layers=[16]", "--set", "network.critic_layers=[16]",
    "--set", "agent.batch_size=32", "--set", "agent.warmup_steps=100", "--set", "agent.warmup_critic=100",
    "--set", "agent.warmup_actor=100", "--set", "train.eval_every=200", "--set", "train.eval_episodes=1",
    "--set", "train.log_every=100", "--set", "train.checkpoint_every=300",
]
TINY_RECURRENT = [
    "--set", "network.recurrent=lstm", "--set", "network.units=8", "--set", "network.history=obs+prev_action",
    "--set", "replay.sequence_length=4", "--set", "replay.burn_in=2",
]


def rdpg(*args: str | Path, cwd: Path, check: bool = True, timeout: float = 600,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m rdpg_cli ARGS`` (the console script's code path) and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "rdpg_cli", *map(str, args)], cwd=cwd, capture_output=True,
                            text=True, timeout=timeout, env=full_env)
    if check and result.returncode != 0:
        raise AssertionError(f"rdpg {' '.join(map(str, args))} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.fixture
def run_rdpg():
    return rdpg


@pytest.fixture
def immutable_folder(tmp_path: Path):
    """A folder nobody can create files in, root included (``chattr +i``; os.access says yes to root)."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("chattr") is not None):
        pytest.skip("needs root and chattr to make a folder root cannot write in")
    folder = tmp_path / "locked"
    folder.mkdir()
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)
