"""The training loop's bookkeeping, in process and without gradient steps (fast): evaluation, log and checkpoint
cadence, best.h5 only on a strictly better evaluation, episode counting and reset seeds, terminated versus
truncated as the replay memory records them, random warm-up actions, and train_interval.

A scripted environment (``Scripted``) replaces the trainer's own where the test needs episodes that end in a
known way; its observations encode (episode, step) so the replay memory's content can be checked."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import TINY

from rdpg_cli import seeding
from rdpg_cli.config import load_config, parse_override
from rdpg_cli.envs import resolve_bounds
from rdpg_cli.evaluation import EvalResult
from rdpg_cli.policy import AgentPolicy
from rdpg_cli.replay import EPISODE_END, EPISODE_START, TERMINATED
from rdpg_cli.trainer import Trainer

NO_LEARNING = ["agent.warmup_critic=100000", "agent.warmup_actor=100000"]


def make_trainer(run_dir: Path, *settings: str) -> Trainer:
    """A Pendulum trainer with TINY's settings, then ``settings`` (``key=value``)."""
    overrides = dict(parse_override(text) for text in [*TINY[1::2], *settings])
    config, spec = resolve_bounds(load_config("pendulum", overrides))
    run_dir.mkdir(exist_ok=True)
    return Trainer(config, spec, run_dir, run_eagerly=True)


class Scripted(gym.Env):
    """Pendulum's spaces; episode ``i`` (counted in resets) lasts ``lengths[i % len]`` steps and ends as
    ``endings[i % len]`` says. Observation (episode, step, 0), reward 0.5 a step. Records the reset seeds."""

    def __init__(self, template: gym.Env, lengths: list[int], endings: list[str]):
        self.observation_space = template.observation_space
        self.action_space = template.action_space
        self.lengths, self.endings = lengths, endings
        self.seeds: list[int | None] = []
        self.episode, self.step_in_episode = -1, 0

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        self.episode += 1
        self.step_in_episode = 0
        return np.array([self.episode, 0, 0], np.float32), {}

    def step(self, action):
        self.step_in_episode += 1
        k = self.episode % len(self.lengths)
        over = self.step_in_episode >= self.lengths[k]
        terminated = over and self.endings[k] == "terminated"
        truncated = over and self.endings[k] == "truncated"
        return np.array([self.episode, self.step_in_episode, 0], np.float32), 0.5, terminated, truncated, {}


def test_evaluation_log_and_checkpoint_cadence_and_best_only_on_a_strictly_better_evaluation(tmp_path):
    """Evaluations at every eval_every-th step, rows at every log_every-th (plus the closing row), checkpoints at
    every checkpoint_every-th and at the last step; best.h5 is written at the first evaluation and then only when
    an evaluation beats the best so far (an equal one does not replace it), and best_eval follows."""
    trainer = make_trainer(tmp_path / "run", *NO_LEARNING, "env.max_episode_steps=7", "train.eval_every=10",
                           "train.log_every=20", "train.checkpoint_every=25")
    scripted_returns = iter([-5.0, -5.0, -3.0, -4.0, -3.0, -1.0])
    evaluated_at: list[int] = []
    written: list[tuple[str, int]] = []
    write = trainer._write_checkpoint

    def evaluation() -> EvalResult:
        evaluated_at.append(trainer.env_steps)
        return EvalResult(returns=[next(scripted_returns)], lengths=[7], seed=0)

    def recording_write(path: Path, with_replay: bool) -> None:
        written.append((path.name, trainer.env_steps))
        write(path, with_replay)

    trainer._run_evaluation = evaluation
    trainer._write_checkpoint = recording_write
    trainer.run(53, fresh=True)  # ends between evaluations: one more, for the summary only
    trainer.close()
    assert evaluated_at == [10, 20, 30, 40, 50, 53]
    assert [step for name, step in written if name == "best.h5"] == [10, 30]  # -5, (-5), -3, (-4), (-3)
    assert [step for name, step in written if name == "checkpoint.h5"] == [25, 50, 53]
    assert trainer.best_eval == -3.0  # the summary's evaluation (-1) is not a training evaluation
    assert trainer.last_eval == (-3.0, 0.0)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["20", "40", "53"]


def test_episodes_are_counted_with_their_own_seeds_and_ends_reach_the_replay_as_they_happened(tmp_path):
    """Each finished episode (terminated or truncated) counts once; episode i resets with the TRAIN_EPISODES
    seed of i; the replay memory gets the step's terminated and truncated apart (TERMINATED only for a
    terminal state, EPISODE_END for both) and EPISODE_START at each episode's first step; the logged episode
    returns and lengths are those episodes'."""
    trainer = make_trainer(tmp_path / "run", *NO_LEARNING, "train.log_every=1000", "train.eval_every=1000",
                           "train.checkpoint_every=1000", "agent.warmup_steps=1000")
    lengths, endings = [3, 4, 2, 5], ["terminated", "truncated", "truncated", "terminated"]
    env = Scripted(trainer.env, lengths, endings)
    trainer.env.close()
    trainer.env = env
    trainer._run_evaluation = lambda: EvalResult(returns=[0.0], lengths=[1], seed=0)
    total = sum(lengths) + 2  # four episodes, and two steps of the fifth
    trainer.run(total, fresh=True)
    trainer.close()
    assert trainer.episodes == 4
    assert env.seeds == [seeding.episode_seed(trainer.seed, seeding.TRAIN_EPISODES, i) for i in range(5)]
    assert trainer.episode_length == 2 and trainer.episode_return == 1.0

    replay = trainer.replay
    assert replay.size == total
    np.testing.assert_array_equal(replay.observations[:total, :2],
                                  [(e, s) for e, n in enumerate([*lengths, 2]) for s in range(n)])
    expected_flags = []
    for n, ending in zip([*lengths, 2], [*endings, None], strict=True):
        for s in range(n):
            flag = EPISODE_START if s == 0 else 0
            if s == n - 1 and ending is not None:
                flag |= EPISODE_END | (TERMINATED if ending == "terminated" else 0)
            expected_flags.append(flag)
    assert replay.flags[:total].tolist() == expected_flags
    assert trainer._mean("rollout/episode_length") == pytest.approx(np.mean(lengths))
    assert trainer._mean("rollout/episode_return") == pytest.approx(0.5 * np.mean(lengths))
    assert trainer.recent_returns == [0.5 * n for n in lengths]


def test_warm_up_actions_are_uniform_random_then_the_actor_acts(tmp_path):
    """The first agent.warmup_steps actions are drawn uniformly in the bounds, not the actor's; from that step
    on (no noise here, no learning) each executed action is the actor's on the observations the episode saw."""
    warmup = 6
    trainer = make_trainer(tmp_path / "run", *NO_LEARNING, f"agent.warmup_steps={warmup}", "agent.noise=none",
                           "env.max_episode_steps=50", "train.eval_every=1000", "train.log_every=1000",
                           "train.checkpoint_every=1000")
    trainer._run_evaluation = lambda: EvalResult(returns=[0.0], lengths=[1], seed=0)
    total = 14
    trainer.run(total, fresh=True)
    trainer.close()
    replay = trainer.replay
    actor = AgentPolicy(trainer.agent, exploring=True)
    actor_actions = np.array([actor.act(o) for o in replay.observations[:total]])
    executed = replay.actions[:total]
    low, high = trainer.spec.low, trainer.spec.high
    assert np.all((executed >= low) & (executed <= high))
    np.testing.assert_array_equal(executed[warmup:], actor_actions[warmup:])
    assert not np.any(np.isclose(executed[:warmup], actor_actions[:warmup], atol=1e-4))
    assert len(np.unique(executed[:warmup])) == warmup  # drawn, not one value repeated


def test_gradient_steps_run_every_train_interval_once_the_critic_warm_up_is_over(tmp_path):
    """With warmup_critic 20, train_interval 3 and gradient_steps 2, the replay memory is sampled twice at
    env steps 21, 24, ..., 39 of a 40-step run, and at no other step."""
    trainer = make_trainer(tmp_path / "run", "agent.warmup_critic=20", "agent.warmup_actor=100000",
                           "agent.warmup_steps=0", "agent.batch_size=8", "agent.train_interval=3",
                           "agent.gradient_steps=2", "train.eval_every=1000", "train.log_every=1000",
                           "train.checkpoint_every=1000")
    trainer._run_evaluation = lambda: EvalResult(returns=[0.0], lengths=[1], seed=0)
    sampled_at: list[int] = []
    sample = trainer.replay.sample

    def recording_sample(*args, **kwargs):
        sampled_at.append(trainer.env_steps)
        return sample(*args, **kwargs)

    trainer.replay.sample = recording_sample
    trainer.agent.train_steps = lambda batches, actor_flags, target_flags: [{"critic_loss": 0.0} for _ in batches]
    trainer.run(40, fresh=True)
    trainer.close()
    assert sampled_at == [step for step in range(21, 41, 3) for _ in range(2)]
    assert trainer.critic_updates == len(sampled_at)
