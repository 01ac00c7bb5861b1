"""The networks' size, checked against the machine's memory before TensorFlow would wait to refuse it."""

from __future__ import annotations

import numpy as np
import pytest

from rdpg_cli import memory
from rdpg_cli.agent import Agent
from rdpg_cli.config import ConfigError, config_from_dict
from rdpg_cli.envs import EnvSpec


def config(recurrent="none", history="obs", twin=False, actor=(16, 8), critic=(12,), units=5):
    return config_from_dict({
        "env": {"id": "Pendulum-v1"}, "action_bounds": {"low": [-2.0, -1.0], "high": [2.0, 1.0]},
        "agent": {"batch_size": 4, "twin_critics": twin},
        "network": {"actor_layers": list(actor), "critic_layers": list(critic), "recurrent": recurrent,
                    "units": units, "history": history},
        "replay": {"size": 100, **({"sequence_length": 3} if recurrent != "none" else {})},
    })


@pytest.mark.parametrize(("recurrent", "history", "twin"), [
    ("none", "obs", False), ("none", "obs", True), ("lstm", "obs+prev_action", False), ("gru", "obs", True)])
def test_the_bound_is_below_the_weights_the_agent_builds_and_close_to_them(recurrent, history, twin):
    cfg = config(recurrent, history, twin)
    spec = EnvSpec("Pendulum-v1", 3, 2, np.array([-2.0, -1.0], np.float32), np.array([2.0, 1.0], np.float32))
    agent = Agent(cfg, spec, seed=0, run_eagerly=True)
    built = sum(int(np.prod(v.shape)) for net in agent.networks().values() for v in net.trainable_variables)
    bound = memory.weights_lower_bound(cfg, 3, 2)
    assert 0.6 * built <= bound <= built


def test_dense_weights_counts_each_kernel():
    assert memory.dense_weights([3, 16, 8, 2]) == 3 * 16 + 16 * 8 + 8 * 2


def test_networks_larger_than_memory_are_refused_with_their_sizes(monkeypatch):
    cfg = config(actor=(1000,), critic=(1000,))
    needed = memory.FLOAT32_BYTES * memory.weights_lower_bound(cfg, 3, 2)
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: needed)
    memory.require_networks_fit(cfg, 3, 2)  # exactly fits
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: needed - 1)
    with pytest.raises(ConfigError, match=r"^network: the networks do not fit in memory \(actor_layers \[1000\]"):
        memory.require_networks_fit(cfg, 3, 2)
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: None)  # unknown: TensorFlow's own refusal stands
    memory.require_networks_fit(cfg, 3, 2)


def test_tensorflow_refusing_networks_within_the_bound_is_the_same_error(monkeypatch, tmp_path):
    """Sizes the bound lets through can still be refused by TensorFlow's allocator: the same one line."""
    import tensorflow as tf

    from rdpg_cli import trainer
    from rdpg_cli.envs import resolve_bounds

    def refuse(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(trainer, "Agent", refuse)
    cfg = config(actor=(1000,)).replace("action_bounds", low=[-2.0], high=[2.0])
    cfg, spec = resolve_bounds(cfg)
    with pytest.raises(ConfigError, match=r"^network: the networks do not fit in memory \(actor_layers \[1000\], "
                                          r"critic_layers \[12\], units 5\)$"):
        trainer.Trainer(cfg, spec, tmp_path / "run")
