"""Acting with a trained agent: the deterministic policy, its recurrent state, and restoring one from a
checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rdpg_cli.agent import Agent
from rdpg_cli.checkpoint import CheckpointData, config_from_checkpoint, read_checkpoint, spec_from_checkpoint
from rdpg_cli.config import Config
from rdpg_cli.errors import CheckpointError, TrainingFault
from rdpg_cli.evaluation import check_environment, non_finite


class AgentPolicy:
    """Deterministic policy over one episode at a time: ``reset()`` at each episode start, then
    ``act(observation) -> action`` clipped to the bounds. Keeps the recurrent state and previous action.
    Acts with the agent's policy actor (``Agent.policy_actor``), or with ``exploring`` the online actor that
    training collects experience with."""

    def __init__(self, agent: Agent, exploring: bool = False):
        self.agent = agent
        self.exploring = exploring
        self.reset()

    def reset(self) -> None:
        self.state = self.agent.initial_state(1)
        self.prev_action = np.zeros(self.agent.spec.action_dim, np.float32)
        self.last_raw_action = self.prev_action

    def act(self, observation: np.ndarray) -> np.ndarray:
        # The numpy forward pass cannot overflow on finite inputs unless the weights diverged (its sigmoid is
        # the tanh form): one error naming the actor, not numpy's warnings and a NaN action for the environment.
        try:
            with np.errstate(over="raise", invalid="raise"):
                raw, self.state = self.agent.act(np.asarray(observation, np.float32), self.prev_action,
                                                 self.state, exploring=self.exploring)
        except FloatingPointError:
            raw = np.full(self.agent.spec.action_dim, np.nan, np.float32)
        shown = non_finite(raw)
        if shown is not None:
            raise TrainingFault(f"the actor's action is non-finite ({shown}): its weights diverged; lower the "
                                "learning rates")
        self.last_raw_action = raw
        action = np.clip(raw, self.agent.spec.low, self.agent.spec.high).astype(np.float32)
        self.prev_action = action
        return action


def restore_agent(agent: Agent, data: CheckpointData, source: str) -> None:
    """Assign every saved array to the agent's variables, after checking names and shapes all match."""
    groups = agent.variable_groups()
    extra = sorted(set(data.variables) - set(groups))
    if extra:
        raise CheckpointError(f"{source}: damaged checkpoint: '{extra[0]}' is not part of the agent its config "
                              f"describes ({', '.join(groups)})")
    for name, variables in groups.items():
        arrays = data.variables.get(name)
        if arrays is None:
            raise CheckpointError(f"{source}: damaged checkpoint: '{name}' is missing")
        if len(arrays) != len(variables):
            raise CheckpointError(
                f"{source}: '{name}' holds {len(arrays)} arrays, the config's networks have {len(variables)}")
        for i, (var, array) in enumerate(zip(variables, arrays, strict=True)):
            if tuple(var.shape) != tuple(array.shape):
                raise CheckpointError(
                    f"{source}: '{name}' array {i} has shape {tuple(array.shape)}, the config's networks "
                    f"need {tuple(var.shape)}")
            kind = np.dtype(getattr(var.dtype, "name", var.dtype)).kind
            if array.dtype.kind != kind and not (kind in "iu" and array.dtype.kind in "iu"):
                raise CheckpointError(f"{source}: damaged checkpoint: '{name}' array {i} has dtype {array.dtype}, "
                                      f"the variable is {np.dtype(getattr(var.dtype, 'name', var.dtype))}")
            if kind == "f" and not np.all(np.isfinite(array)):
                raise CheckpointError(f"{source}: damaged checkpoint: '{name}' array {i} holds non-finite values")
            if kind in "iu" and np.any(array < 0):  # counters (gradient steps, optimizer iterations)
                raise CheckpointError(f"{source}: damaged checkpoint: '{name}' array {i} holds a negative count")
    for name, variables in groups.items():
        for var, array in zip(variables, data.variables[name], strict=True):
            var.assign(array)
    agent.actor_changed()


def load_agent(path: Path, with_replay: bool = False) -> tuple[Config, Agent, CheckpointData]:
    """-> (config, agent with the saved weights, what the file holds); refused when the environment the
    config builds today no longer has the spaces the checkpoint was trained on."""
    data = read_checkpoint(path, with_replay=with_replay)
    config = config_from_checkpoint(data, str(path))
    check_environment(config, data.observation_dim, data.action_dim, str(path))
    agent = Agent(config, spec_from_checkpoint(data), seed=config.train.seed)
    restore_agent(agent, data, str(path))
    return config, agent, data
