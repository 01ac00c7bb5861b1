"""Evaluation against a scripted environment and policy: each episode's reset seed, a policy reset before each
episode, the policy's action reaching the environment, returns summed over every step, and the episode
ending on terminated as well as truncated."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rdpg_cli import seeding
from rdpg_cli.config import config_from_dict
from rdpg_cli.evaluation import evaluate

CONFIG = config_from_dict({"env": {"id": "Pendulum-v1"}})


class Counting(gym.Env):
    """Episode i (counted in resets) lasts 2 + i steps, terminated when i is odd, truncated when even; step k
    (from 1) of it rewards 10 * i + k; a step after the end raises. Records reset seeds and the actions it was
    given."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def __init__(self):
        self.seeds: list[int | None] = []
        self.actions: list[float] = []
        self.episode, self.k = -1, 0

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        self.episode += 1
        self.k = 0
        return np.array([self.episode, 0, 0], np.float32), {}

    def step(self, action):
        if self.k >= 2 + self.episode:
            raise RuntimeError("stepped after the episode ended")
        self.actions.append(float(np.asarray(action).reshape(())))
        self.k += 1
        over = self.k >= 2 + self.episode
        reward = 10.0 * self.episode + self.k
        observation = np.array([self.episode, self.k, 0], np.float32)
        return observation, reward, over and self.episode % 2 == 1, over and self.episode % 2 == 0, {}


class Scripted:
    """A policy that logs its resets and acts with a running count (so each action is told apart)."""

    def __init__(self):
        self.log: list[str] = []
        self.count = 0

    def reset(self) -> None:
        self.log.append("reset")

    def act(self, observation: np.ndarray) -> np.ndarray:
        self.log.append("act")
        self.count += 1
        return np.array([self.count / 100.0], np.float32)


def test_evaluation_seeds_resets_actions_and_summed_returns():
    """Episode i resets with the EVAL_EPISODES seed of (seed, i); the policy is reset before each episode's
    first action; the environment gets the policy's actions; each return is the sum of that episode's rewards
    and each length its step count, whether it was terminated or truncated."""
    env, policy = Counting(), Scripted()
    result = evaluate(policy, CONFIG, episodes=4, seed=11, env=env)
    assert env.seeds == [seeding.episode_seed(11, seeding.EVAL_EPISODES, i) for i in range(4)]
    assert len(set(env.seeds)) == 4
    lengths = [2 + i for i in range(4)]
    assert result.lengths == lengths
    assert result.returns == [sum(10.0 * i + k for k in range(1, n + 1)) for i, n in enumerate(lengths)]
    assert policy.log == [entry for n in lengths for entry in ["reset", *["act"] * n]]
    np.testing.assert_allclose(env.actions, np.arange(1, sum(lengths) + 1) / 100.0, rtol=1e-6)
    assert result.seed == 11
    assert result.as_dict()["mean_return"] == np.mean(result.returns)


def test_the_evaluation_seeds_do_not_depend_on_what_ran_before():
    """Two evaluations with the same seed start from the same states even on one environment object used in
    between (an evaluation does not continue a stream), and the training episodes' seeds are others."""
    env = Counting()
    evaluate(Scripted(), CONFIG, episodes=2, seed=3, env=env)
    evaluate(Scripted(), CONFIG, episodes=2, seed=3, env=env)
    assert env.seeds[:2] == env.seeds[2:]
    training = {seeding.episode_seed(3, seeding.TRAIN_EPISODES, i) for i in range(2)}
    assert not training & set(env.seeds)
