"""Exploration noise (DESIGN §3): Gaussian and Ornstein-Uhlenbeck noise in units of half the action range, the
OU state reset at every episode start, linear annealing, and the trainer's ``clip(actor + noise)``.

The expected values are computed here from a generator seeded as the noise's stream is documented to be
(``SeedSequence([seed, 2])``: seeding.EXPLORATION_NOISE, whose numbers checkpoints rely on), not by calling
``ExplorationNoise`` a second time.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY

from rdpg_cli.config import AgentConfig
from rdpg_cli.noise import ExplorationNoise, sigma_at

HALF_RANGE = np.array([2.0, 5.0])  # two dims of different widths: a scale of 1 or a shared scale would show
SEED = 11


def reference_stream(seed: int = SEED) -> np.random.Generator:
    """The exploration stream's generator, seeded independently of rdpg_cli.seeding."""
    return np.random.default_rng(np.random.SeedSequence([seed, 2]))


def test_gaussian_noise_is_sigma_times_half_range_times_the_streams_normals():
    """Gaussian noise: sigma * half_range * N(0, 1) from the seeded stream, a fresh draw every step."""
    noise = ExplorationNoise(AgentConfig(noise="gaussian", noise_sigma=0.3), HALF_RANGE, SEED)
    rng = reference_stream()
    for step in range(5):
        expected = 0.3 * HALF_RANGE * rng.standard_normal(2)
        np.testing.assert_allclose(noise.sample(step), expected, rtol=1e-12)


def test_ou_noise_follows_its_recurrence_in_units_of_half_the_range():
    """OU: x <- x - theta x + sigma N(0, 1) (dt = 1), returned as x * half_range; x itself stays unitless."""
    theta, sigma = 0.15, 0.4
    noise = ExplorationNoise(AgentConfig(noise="ou", noise_sigma=sigma, ou_theta=theta), HALF_RANGE, SEED)
    rng = reference_stream()
    x = np.zeros(2)
    for step in range(8):
        x = x - theta * x + sigma * rng.standard_normal(2)
        np.testing.assert_allclose(noise.sample(step), x * HALF_RANGE, rtol=1e-12)
        np.testing.assert_allclose(noise.ou_state, x, rtol=1e-12)


def test_ou_reset_zeroes_the_state_and_the_next_sample_has_no_memory():
    """reset() (every episode start) sets the OU state to zero: the first sample after it is sigma * N(0, 1)
    * half_range alone, nothing of the previous episode's drift."""
    sigma = 0.5
    noise = ExplorationNoise(AgentConfig(noise="ou", noise_sigma=sigma), HALF_RANGE, SEED)
    rng = reference_stream()
    for step in range(10):
        noise.sample(step)
        rng.standard_normal(2)
    assert np.all(noise.ou_state != 0.0)
    noise.reset()
    np.testing.assert_array_equal(noise.ou_state, np.zeros(2))
    np.testing.assert_allclose(noise.sample(10), sigma * rng.standard_normal(2) * HALF_RANGE, rtol=1e-12)


@pytest.mark.parametrize(("step", "expected"), [(-5, 0.4), (0, 0.4), (25, 0.325), (50, 0.25), (100, 0.1),
                                                (1000, 0.1)])
def test_sigma_anneals_linearly_then_stays(step, expected):
    """sigma_at: noise_sigma at step 0 (and before), linear to noise_sigma_final over noise_anneal_steps,
    constant after."""
    config = AgentConfig(noise_sigma=0.4, noise_sigma_final=0.1, noise_anneal_steps=100)
    assert sigma_at(config, step) == pytest.approx(expected, abs=1e-12)
    assert sigma_at(AgentConfig(noise_sigma=0.4), step) == 0.4  # no final value: constant


@pytest.mark.parametrize("kind", ["gaussian", "ou"])
def test_samples_use_the_annealed_sigma_of_their_step(kind):
    """The scale of each sample is sigma_at(step): both kinds read the annealed value, not noise_sigma."""
    config = AgentConfig(noise=kind, noise_sigma=0.4, noise_sigma_final=0.1, noise_anneal_steps=100,
                         ou_theta=0.2)
    noise = ExplorationNoise(config, HALF_RANGE, SEED)
    rng = reference_stream()
    x = np.zeros(2)
    for step in (0, 50, 100, 150):
        sigma = {0: 0.4, 50: 0.25}.get(step, 0.1)
        white = rng.standard_normal(2)
        x = x - 0.2 * x + sigma * white
        expected = sigma * white * HALF_RANGE if kind == "gaussian" else x * HALF_RANGE
        np.testing.assert_allclose(noise.sample(step), expected, rtol=1e-12)


def test_no_noise_is_zero():
    """noise: none (and a scale of zero) adds nothing."""
    assert np.array_equal(ExplorationNoise(AgentConfig(noise="none"), HALF_RANGE, SEED).sample(0), np.zeros(2))
    assert np.array_equal(ExplorationNoise(AgentConfig(noise_sigma=0.0), HALF_RANGE, SEED).sample(0), np.zeros(2))


def test_state_json_round_trip_continues_the_same_numbers():
    """A checkpoint's noise state (generator and OU state) resumes the exact sequence."""
    config = AgentConfig(noise="ou", noise_sigma=0.3)
    noise = ExplorationNoise(config, HALF_RANGE, SEED)
    for step in range(4):
        noise.sample(step)
    saved = noise.state_json()
    expected = [noise.sample(step) for step in range(4, 8)]
    restored = ExplorationNoise(config, HALF_RANGE, seed=SEED + 1)
    restored.load_state_json(saved)
    for step, want in zip(range(4, 8), expected, strict=True):
        np.testing.assert_array_equal(restored.sample(step), want)


@pytest.mark.parametrize("kind", ["ou", "gaussian"])
def test_trainer_clips_after_adding_noise_and_resets_ou_at_episode_ends(tmp_path, kind):
    """A short run with noise far wider than the bounds (sigma 2, i.e. a std of twice the half range): every
    action stored in replay (the executed one) lies inside the bounds, many exactly at a bound; clipping the
    actor's output before adding the noise would store actions outside. With OU noise, the state is zero
    right after an episode ends (the trainer resets it at every episode start)."""
    from rdpg_cli.config import load_config, parse_override
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.trainer import Trainer

    steps, episode, warmup = 90, 30, 20
    overrides = dict(parse_override(text) for text in [
        *TINY[1::2], f"agent.warmup_steps={warmup}", f"agent.noise={kind}", "agent.noise_sigma=2.0",
        f"env.max_episode_steps={episode}",
        # No gradient step: the actor stays as initialised, and the run needs no compiled update.
        "agent.warmup_critic=100000", "agent.warmup_actor=100000", "train.eval_every=100000"])
    config, spec = resolve_bounds(load_config("pendulum", overrides))
    trainer = Trainer(config, spec, tmp_path)
    ou_after_episode_end: list[np.ndarray] = []
    reset_episode = trainer._reset_episode

    def reset_and_record() -> None:
        reset_episode()
        if trainer.env_steps > warmup:
            ou_after_episode_end.append(trainer.noise.ou_state.copy())

    trainer._reset_episode = reset_and_record
    try:
        trainer.run(steps, fresh=True)
    finally:
        trainer.close()
    assert trainer.env_steps == steps and trainer.critic_updates == 0
    actions = trainer.replay.actions[:trainer.replay.size, 0]
    noisy = actions[warmup:]
    assert len(noisy) == steps - warmup
    assert np.all((actions >= spec.low[0]) & (actions <= spec.high[0])), actions[(actions < -2) | (actions > 2)]
    assert np.sum(np.abs(noisy) == 2.0) >= len(noisy) // 4, "the noise must push many actions past a bound"
    assert len(np.unique(noisy)) > 10
    assert len(ou_after_episode_end) == 3  # after steps 30, 60 and 90
    for state in ou_after_episode_end:
        np.testing.assert_array_equal(state, np.zeros_like(state))


def test_trainer_anneals_the_noise_by_its_env_step(tmp_path):
    """The trainer asks for the noise of the env step it is at: annealed from 2.0 to 0 over 60 env steps, the
    actions after step 60 carry none (a trainer passing any fixed step kept the first scale for ever)."""
    from rdpg_cli.config import load_config, parse_override
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.trainer import Trainer

    steps, warmup, anneal = 90, 20, 60
    overrides = dict(parse_override(text) for text in [
        *TINY[1::2], f"agent.warmup_steps={warmup}", "agent.noise=gaussian", "agent.noise_sigma=2.0",
        "agent.noise_sigma_final=0.0", f"agent.noise_anneal_steps={anneal}",
        "agent.warmup_critic=100000", "agent.warmup_actor=100000", "train.eval_every=100000"])
    config, spec = resolve_bounds(load_config("pendulum", overrides))
    trainer = Trainer(config, spec, tmp_path)
    applied: dict[int, float] = {}  # env step -> the noise's size
    sample = trainer.noise.sample

    def recorded(step: int) -> np.ndarray:
        noise = sample(step)
        applied[trainer.env_steps] = float(np.abs(noise).max())
        return noise

    trainer.noise.sample = recorded
    try:
        trainer.run(steps, fresh=True)
    finally:
        trainer.close()
    assert sorted(applied) == list(range(warmup, steps))  # once per env step after the random warm-up
    assert all(applied[step] > 0 for step in range(warmup, anneal - 5))
    assert all(applied[step] == 0 for step in range(anneal, steps))
    early, late = np.mean([applied[s] for s in range(20, 35)]), np.mean([applied[s] for s in range(45, 60)])
    assert late < early  # shrinking on the way
