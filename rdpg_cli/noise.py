"""Exploration noise added to the actor's output before clipping: Gaussian or Ornstein-Uhlenbeck.

Scales are fractions of half the action range, so one preset value suits any bounds. Each process owns a
numpy Generator whose state is plain integers, saved in checkpoints for bit-exact resume.
"""

from __future__ import annotations

import json

import numpy as np

from rdpg_cli.config import AgentConfig
from rdpg_cli.seeding import EXPLORATION_NOISE, generator


def sigma_at(config: AgentConfig, step: int) -> float:
    """Noise scale at env step ``step``: constant, or annealed linearly to ``noise_sigma_final``."""
    if config.noise_sigma_final is None or config.noise_anneal_steps == 0:
        return config.noise_sigma
    fraction = min(max(step, 0) / config.noise_anneal_steps, 1.0)
    return config.noise_sigma + fraction * (config.noise_sigma_final - config.noise_sigma)


class ExplorationNoise:
    """``sample(step) -> noise`` in action units; ``reset()`` at every episode start."""

    def __init__(self, config: AgentConfig, half_range: np.ndarray, seed: int):
        self.config = config
        self.kind = config.noise
        self.half_range = np.asarray(half_range, np.float64)
        self.rng = generator(seed, EXPLORATION_NOISE)
        self.ou_state = np.zeros_like(self.half_range)

    def reset(self) -> None:
        self.ou_state = np.zeros_like(self.half_range)

    def sample(self, step: int) -> np.ndarray:
        sigma = sigma_at(self.config, step)
        if self.kind == "none" or sigma == 0.0:
            return np.zeros_like(self.half_range)
        white = self.rng.standard_normal(self.half_range.shape)
        if self.kind == "gaussian":
            return sigma * self.half_range * white
        # Ornstein-Uhlenbeck with dt = 1: x <- x - theta * x + sigma * N(0, 1), temporally correlated.
        self.ou_state = self.ou_state - self.config.ou_theta * self.ou_state + sigma * white
        return self.ou_state * self.half_range

    def state_json(self) -> str:
        return json.dumps({"rng": self.rng.bit_generator.state, "ou_state": self.ou_state.tolist()})

    def load_state_json(self, text: str) -> None:
        data = json.loads(text)
        self.rng.bit_generator.state = data["rng"]
        self.ou_state = np.asarray(data["ou_state"], np.float64)
