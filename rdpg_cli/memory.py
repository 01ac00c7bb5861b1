"""Whether a config's networks can fit in this machine's memory, told before TensorFlow loads.

TensorFlow's CPU allocator, refused, waits and retries for about ten seconds per allocation before it gives up:
a typo such as ``actor_layers: [1000000000000000]`` took 26 s to refuse (TensorFlow's import included). A lower
bound on the weights' bytes, compared with the physical memory, refuses it at once; sizes the bound lets
through still meet the allocator's refusal (``Trainer``)."""

from __future__ import annotations

import itertools
import os

from rdpg_cli.config import Config, ConfigError

FLOAT32_BYTES = 4
COPIES = 2  # online and target networks (Adam's two moments of the online ones come on top)


def dense_weights(widths: list[int]) -> int:
    """Kernel entries of a chain of dense layers of these widths (input first; biases left out)."""
    return sum(a * b for a, b in itertools.pairwise(widths))


def weights_lower_bound(config: Config, observation_dim: int, action_dim: int) -> int:
    """At least this many float32 weights make up the actor, critic(s) and their targets (biases, the critic's
    action input and the optimizer's moments left out)."""
    network = config.network
    history = observation_dim + (action_dim if network.history == "obs+prev_action" else 0)
    features, recurrent = history, 0
    if network.recurrent != "none":
        gates = 4 if network.recurrent == "lstm" else 3
        recurrent = gates * (history + network.units) * network.units
        features = network.units
    actor = recurrent + dense_weights([features, *network.actor_layers, action_dim])
    critic = recurrent + dense_weights([features, *network.critic_layers, 1])
    critics = 2 if config.agent.twin_critics else 1
    return COPIES * (actor + critics * critic)


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return None


def networks_do_not_fit(config: Config, detail: str = "") -> ConfigError:
    """The one error for networks too large, found here or by TensorFlow's allocator (``Trainer``)."""
    network = config.network
    return ConfigError(f"network: the networks do not fit in memory (actor_layers {network.actor_layers}, "
                       f"critic_layers {network.critic_layers}, units {network.units}{detail})")


def require_networks_fit(config: Config, observation_dim: int, action_dim: int) -> None:
    needed = FLOAT32_BYTES * weights_lower_bound(config, observation_dim, action_dim)
    memory = physical_memory_bytes()
    if memory is not None and needed > memory:
        raise networks_do_not_fit(config, f": at least {needed / 2**30:.3g} GiB of weights, "
                                          f"{memory / 2**30:.3g} GiB of memory here")
