"""Every random stream of rdpg, each a pure function of a seed and the stream's name.

A run's ``train.seed`` gives its networks' initial weights, replay sampling, exploration noise and training
episodes; ``train.eval_seed`` gives the evaluation episodes. The streams are named so that no two share
numbers by accident, and keep the numbers they have always had: checkpoints hold the generators' states, and
a resume goes on bit for bit.
"""

from __future__ import annotations

import numpy as np

# Episode start states, one reset seed per episode: SeedSequence([seed, stream, episode]).
TRAIN_EPISODES = 0
EVAL_EPISODES = 1
# Generators: SeedSequence([seed, stream]).
REPLAY_SAMPLING = 1
EXPLORATION_NOISE = 2


def episode_seed(seed: int, stream: int, episode: int) -> int:
    """A reset seed for one episode, a pure function of (seed, stream, episode index).

    Seeding every episode, not just the first, is what lets a resumed run rebuild the environment exactly:
    it needs only the counters and the executed actions of the current episode."""
    return int(np.random.SeedSequence([seed, stream, episode]).generate_state(1)[0])


def generator(seed: int, stream: int) -> np.random.Generator:
    """The numpy generator of one stream (its state is plain integers, saved in checkpoints)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def seed_networks(seed: int) -> None:
    """Python's, numpy's and TensorFlow's global seeds, which Keras draws initial weights from."""
    import keras

    keras.utils.set_random_seed(seed)
