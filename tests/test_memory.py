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


@pytest.mark.parametrize(("recurrent", "twin", "expected"), [
    # batch 4, feed-forward: one row per sample; the critics' sum (12 wide) is below the actor's (16 + 8)
    ("none", False, 4 * (16 + 8)),
    ("none", True, max(4 * (16 + 8), 2 * 4 * 12)),
    # recurrent: 4 windows of 3 trained steps, the encoder's 5 units before the head's layers
    ("lstm", True, max(12 * (5 + 16 + 8), 2 * 12 * (5 + 12))),
])
def test_the_activation_bound_counts_the_hidden_outputs_of_one_update(recurrent, twin, expected):
    assert memory.activations_lower_bound(config(recurrent, twin=twin)) == expected


def test_the_training_bound_adds_adams_moments_and_the_activations():
    cfg = config(twin=True)
    weights = memory.weights_lower_bound(cfg, 3, 2)  # online and target copies
    assert memory.training_lower_bound(cfg, 3, 2) == weights + weights + memory.activations_lower_bound(cfg)


def test_a_batch_whose_activations_do_not_fit_is_refused_though_the_weights_do(monkeypatch):
    cfg = config(actor=(1000,), critic=(1000,))
    weights = memory.FLOAT32_BYTES * memory.weights_lower_bound(cfg, 3, 2)
    big_batch = cfg.replace("replay", size=10**7).replace("agent", batch_size=10**6)
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 10 * weights)
    memory.require_networks_fit(cfg, 3, 2)
    # 1000 hidden outputs of the actor for each of 10**6 samples: 3.73 GiB, where the weights are 70 kB
    with pytest.raises(ConfigError, match=r"batch_size 1000000: at least 3.73 GiB for training \(6.71e-05 GiB of "
                                          r"weights\), 0.000671 GiB of memory here\)$"):
        memory.require_networks_fit(big_batch, 3, 2)


def test_networks_larger_than_memory_are_refused_with_their_sizes(monkeypatch):
    cfg = config(actor=(1000,), critic=(1000,))
    needed = memory.FLOAT32_BYTES * memory.training_lower_bound(cfg, 3, 2)
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
