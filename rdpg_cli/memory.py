"""Whether a config's networks can fit in this machine's memory, told before TensorFlow loads.

TensorFlow's CPU allocator, refused, waits and retries for about ten seconds per allocation before it gives up:
a typo such as ``actor_layers: [1000000000000000]`` took 26 s to refuse (TensorFlow's import included). Worse,
where the weights fit but one batch's activations do not (``actor_layers: [100000000]``: 3.2 GB of weights,
100 GB of activations for a batch of 256), the operating system kills the process mid-update, with no message
and a half-written run folder left behind. A lower bound on the bytes training needs (weights, the optimizer's
moments, one batch's activations), compared with the physical memory, refuses both at once; sizes the bound
lets through still meet the allocator's refusal (``Trainer``)."""

from __future__ import annotations

import itertools
import os

from rdpg_cli.config import Config, ConfigError

FLOAT32_BYTES = 4
COPIES = 2  # online and target networks
ADAM_MOMENTS = 2  # Adam's two moments of each online weight, allocated with the optimizer


def dense_weights(widths: list[int]) -> int:
    """Kernel entries of a chain of dense layers of these widths (input first; biases left out)."""
    return sum(a * b for a, b in itertools.pairwise(widths))


def online_weights(config: Config, observation_dim: int, action_dim: int, full_observation_dim: int = 1) -> int:
    """At least this many weights in the online actor and critic(s) (biases and the critic's action input left
    out). ``full_observation_dim``: what a critic over the whole observation reads, where it is known (before
    the environment is made it is not: at least one component)."""
    network = config.network
    history = observation_dim + (action_dim if network.history == "obs+prev_action" else 0)
    features, recurrent = history, 0
    if network.recurrent != "none":
        gates = 4 if network.recurrent == "lstm" else 3
        recurrent = gates * (history + network.units) * network.units
        features = network.units
    actor = recurrent + dense_weights([features, *network.actor_layers, action_dim])
    if network.critic_input == "full_observation":  # feed-forward over the whole observation
        critic = dense_weights([full_observation_dim, *network.critic_layers, 1])
    else:
        critic = recurrent + dense_weights([features, *network.critic_layers, 1])
    return actor + critics_of(config) * critic


def weights_lower_bound(config: Config, observation_dim: int, action_dim: int) -> int:
    """At least this many float32 weights make up the actor, critic(s) and their targets (biases, the critic's
    action input and the optimizer's moments left out)."""
    return COPIES * online_weights(config, observation_dim, action_dim)


def critics_of(config: Config) -> int:
    return 2 if config.agent.twin_critics else 1


def activations_lower_bound(config: Config) -> int:
    """At least this many float32 activations are held at once by an update: when a network's backward pass
    starts, every hidden layer's output for the batch's trained steps is still there (the recurrent output
    too); the critic loss sums the twin critics', so both are. The actor's and the critic's are not counted
    together (TensorFlow may free one before the other is made)."""
    network = config.network
    rows = config.agent.batch_size * (config.replay.sequence_length if config.recurrent else 1)
    encoder = network.units if config.recurrent else 0
    actor = rows * (encoder + sum(network.actor_layers))
    critics = critics_of(config) * rows * (encoder + sum(network.critic_layers))
    return max(actor, critics)


def training_lower_bound(config: Config, observation_dim: int, action_dim: int) -> int:
    """At least this many float32 values exist while training: the networks and their targets, Adam's
    moments of the online ones, and one update's activations."""
    online = online_weights(config, observation_dim, action_dim)
    return (COPIES + ADAM_MOMENTS) * online + activations_lower_bound(config)


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return None


def networks_do_not_fit(config: Config, detail: str = "") -> ConfigError:
    """The one error for networks too large, found here or by TensorFlow's allocator (``Trainer``). It is about
    every setting the estimate counts: a --set of any of them is named (the batch's rows, not only the layers)."""
    network = config.network
    keys = ("network", "agent.batch_size", "agent.twin_critics", *(("replay.sequence_length",) if config.recurrent
                                                                  else ()))
    return ConfigError(f"network: the networks do not fit in memory (actor_layers {network.actor_layers}, "
                       f"critic_layers {network.critic_layers}, units {network.units}{detail})", keys=keys)


def require_networks_fit(config: Config, observation_dim: int, action_dim: int) -> None:
    needed = FLOAT32_BYTES * training_lower_bound(config, observation_dim, action_dim)
    memory = physical_memory_bytes()
    if memory is not None and needed > memory:
        weights = FLOAT32_BYTES * weights_lower_bound(config, observation_dim, action_dim)
        rows = f", batch_size {config.agent.batch_size}"
        if config.recurrent:
            rows += f", sequence_length {config.replay.sequence_length}"
        raise networks_do_not_fit(config, f"{rows}: at least {needed / 2**30:.3g} GiB for training "
                                          f"({weights / 2**30:.3g} GiB of weights), {memory / 2**30:.3g} GiB of "
                                          "memory here")
