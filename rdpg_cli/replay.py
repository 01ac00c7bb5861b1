"""Replay memory: a numpy ring of transitions with episode boundaries, sampled as windows.

One array per field, no Python object per transition (Pendulum: 33 bytes a transition). A sample is a
batch of windows of ``burn_in + sequence_length`` steps. The trained part starts at a uniformly drawn
transition ``t0``; the burn-in steps before it only warm up the recurrent state. No window crosses an
episode boundary: steps of another episode (before ``t0``'s episode began, or after it ended) are marked
invalid in ``valid`` and masked out of every loss, every mean and every recurrent state update.
Feed-forward sampling is the same with ``burn_in = 0, sequence_length = 1``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

TERMINATED = np.uint8(1)  # a terminal state: no bootstrap
EPISODE_END = np.uint8(2)  # terminated or truncated: the next slot starts another episode
EPISODE_START = np.uint8(4)  # first transition of an episode: the previous action is zero


class Batch(NamedTuple):
    """A batch of windows, all ``[batch, window, ...]``; ``window = burn_in + sequence_length``."""

    observations: np.ndarray  # o_t                            float32 [B, W, obs]
    next_observations: np.ndarray  # o_{t+1} (the true final one at an episode end) [B, W, obs]
    actions: np.ndarray  # executed (clipped) a_t           float32 [B, W, act]
    prev_actions: np.ndarray  # a_{t-1}, zero at an episode start float32 [B, W, act]
    rewards: np.ndarray  # r_t                              float32 [B, W]
    terminated: np.ndarray  # 1.0 where s_{t+1} is terminal  float32 [B, W]
    valid: np.ndarray  # 1.0 where the step belongs to t0's episode float32 [B, W]
    start_state: tuple[np.ndarray, ...]  # actor state recorded at the window start (store_state), else ()


class ReplayBuffer:
    fast_single_steps = True  # sample one-step windows by the shortcut (tests compare it with the general path)

    def __init__(self, capacity: int, observation_dim: int, action_dim: int,
                 state_shapes: tuple[int, ...] = ()):
        self.capacity = int(capacity)
        self.observation_dim = observation_dim
        self.action_dim = action_dim
        self.observations = np.zeros((capacity, observation_dim), np.float32)
        self.next_observations = np.zeros((capacity, observation_dim), np.float32)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros((capacity,), np.float32)
        self.flags = np.zeros((capacity,), np.uint8)
        self.states = tuple(np.zeros((capacity, n), np.float32) for n in state_shapes)
        self.position = 0  # next slot to write
        self.size = 0
        self._starting = True  # the next transition added starts an episode

    # -- writing -------------------------------------------------------------------------------------------

    def add(self, observation: np.ndarray, action: np.ndarray, reward: float, next_observation: np.ndarray,
            terminated: bool, truncated: bool, state: tuple[np.ndarray, ...] = ()) -> None:
        i = self.position
        self.observations[i] = observation
        self.next_observations[i] = next_observation
        self.actions[i] = action
        self.rewards[i] = reward
        flags = np.uint8(0)
        if terminated:
            flags |= TERMINATED
        if terminated or truncated:
            flags |= EPISODE_END
        if self._starting:
            flags |= EPISODE_START
        self.flags[i] = flags
        for store, value in zip(self.states, state, strict=False):
            store[i] = value
        self._starting = bool(terminated or truncated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def mark_episode_start(self) -> None:
        """The next transition begins a fresh episode (e.g. after a resume that could not continue one)."""
        self._starting = True

    # -- reading -------------------------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        arrays = [self.observations, self.next_observations, self.actions, self.rewards, self.flags,
                  *self.states]
        return sum(a.nbytes for a in arrays)

    def _physical(self, logical: np.ndarray) -> np.ndarray:
        oldest = (self.position - self.size) % self.capacity
        return (oldest + logical) % self.capacity

    def sample(self, rng: np.random.Generator, batch_size: int, sequence_length: int = 1,
               burn_in: int = 0) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay memory")
        window = burn_in + sequence_length
        t0 = rng.integers(0, self.size, size=batch_size)
        if window == 1 and not self.states and self.fast_single_steps:
            return self._single_steps(t0)
        logical = t0[:, None] + np.arange(-burn_in, sequence_length)[None, :]  # [B, W]
        in_range = (logical >= 0) & (logical < self.size)
        phys = self._physical(np.clip(logical, 0, self.size - 1))
        flags = self.flags[phys]
        ended = (flags & EPISODE_END) != 0
        started = (flags & EPISODE_START) != 0

        # Trained part: valid until (and including) the first episode end at or after t0, and before any
        # episode start after t0 (an episode cut off by mark_episode_start has no end flag).
        trained_ends = ended[:, burn_in:]
        ended_before = (np.cumsum(trained_ends, axis=1) - trained_ends) > 0
        valid_trained = in_range[:, burn_in:] & ~ended_before
        valid_trained[:, 1:] &= np.cumsum(started[:, burn_in + 1:], axis=1) == 0
        # Burn-in part: valid from t0's episode start on. Step j is in t0's episode if no episode start
        # lies in (j, t0]: count the starts from the right.
        if burn_in:
            from_j = np.cumsum(started[:, ::-1], axis=1)[:, ::-1]  # starts at positions >= j
            from_j = np.concatenate([from_j, np.zeros((batch_size, 1), from_j.dtype)], axis=1)
            starts_in_between = from_j[:, 1:burn_in + 1] - from_j[:, burn_in + 1:burn_in + 2]  # in (j, t0]
            valid_burn = in_range[:, :burn_in] & (starts_in_between == 0)
            valid = np.concatenate([valid_burn, valid_trained], axis=1)
        else:
            valid = valid_trained

        previous = self.actions[(phys - 1) % self.capacity]
        # The oldest stored step has no stored predecessor (before the first write, or overwritten once the ring
        # wrapped): its previous action reads as an episode start's, zero, and windows reaching before it start
        # from the zero state. One slot of the memory, mid-episode at worst.
        no_previous = started | (logical <= 0)
        prev_actions = np.where(no_previous[..., None], 0.0, previous).astype(np.float32)

        start_state: tuple[np.ndarray, ...] = ()
        if self.states:
            # The recorded state at the first step of the window; zero where the window opens before the
            # episode (masked steps leave the state alone, so the episode starts from zero as when acting).
            first_valid = valid[:, 0:1]
            start_state = tuple(s[phys[:, 0]] * first_valid for s in self.states)

        assert valid.shape == (batch_size, window)
        return Batch(
            observations=self.observations[phys],
            next_observations=self.next_observations[phys],
            actions=self.actions[phys],
            prev_actions=prev_actions,
            rewards=self.rewards[phys],
            terminated=((flags & TERMINATED) != 0).astype(np.float32),
            valid=valid.astype(np.float32),
            start_state=start_state,
        )

    def _single_steps(self, t0: np.ndarray) -> Batch:
        """``sample`` for windows of one step without recorded states (feed-forward DDPG), the same
        arrays with less work: a lone step is always valid, and only its previous action needs a look back."""
        phys = self._physical(t0)
        flags = self.flags[phys]
        no_previous = ((flags & EPISODE_START) != 0) | (t0 == 0)
        previous = self.actions[(phys - 1) % self.capacity]
        prev_actions = np.where(no_previous[:, None], np.float32(0.0), previous)
        return Batch(
            observations=self.observations[phys][:, None],
            next_observations=self.next_observations[phys][:, None],
            actions=self.actions[phys][:, None],
            prev_actions=prev_actions[:, None],
            rewards=self.rewards[phys][:, None],
            terminated=((flags & TERMINATED) != 0).astype(np.float32)[:, None],
            valid=np.ones((len(t0), 1), np.float32),
            start_state=(),
        )

    def current_episode_actions(self) -> np.ndarray:
        """Executed actions of the episode in progress, oldest first (empty at an episode boundary).

        Replaying them into a freshly seeded environment rebuilds its exact state on resume."""
        if self._starting or self.size == 0:
            return np.zeros((0, self.action_dim), np.float32)
        logical = np.arange(self.size - 1, -1, -1)
        phys = self._physical(logical)
        starts = np.nonzero(self.flags[phys] & EPISODE_START)[0]
        if starts.size == 0:
            raise ValueError("the episode in progress is longer than the replay memory")
        return self.actions[phys[: starts[0] + 1][::-1]].copy()

    # -- persistence (plain arrays: no pickle) ---------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """The stored part only, oldest first, so a file holds ``size`` rows, not ``capacity``."""
        phys = self._physical(np.arange(self.size))
        out = {
            "observations": self.observations[phys],
            "next_observations": self.next_observations[phys],
            "actions": self.actions[phys],
            "rewards": self.rewards[phys],
            "flags": self.flags[phys],
            "starting": np.array(self._starting),
        }
        for k, s in enumerate(self.states):
            out[f"state_{k}"] = s[phys]
        return out

    def load_state_dict(self, data: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` saved; a ValueError names the first member that does not fit."""
        if "flags" not in data or np.ndim(data["flags"]) != 1:
            raise ValueError("replay/flags is missing or not one value per transition")
        n = int(data["flags"].shape[0])
        if n > self.capacity:
            raise ValueError(f"the saved replay holds {n} transitions, more than replay.size {self.capacity}")
        expected = {"observations": (n, self.observation_dim), "next_observations": (n, self.observation_dim),
                    "actions": (n, self.action_dim), "rewards": (n,), "starting": ()}
        expected.update({f"state_{k}": (n, s.shape[1]) for k, s in enumerate(self.states)})
        for name, shape in expected.items():
            if name not in data:
                raise ValueError(f"replay/{name} is missing")
            if np.shape(data[name]) != shape or np.asarray(data[name]).dtype.kind not in "biuf":
                raise ValueError(f"replay/{name} holds {np.asarray(data[name]).dtype} {list(np.shape(data[name]))}, "
                                 f"expected numbers {list(shape)}")
        flags = np.asarray(data["flags"])
        every_flag = int(TERMINATED | EPISODE_END | EPISODE_START)
        if flags.dtype.kind not in "biu" or np.any(flags.astype(np.int64) & ~every_flag):  # negatives too
            raise ValueError("replay/flags holds values that are not episode flags")
        for name in ("observations", "next_observations", "actions", "rewards"):
            if not np.all(np.isfinite(data[name])):  # the trainer never stores one: the file was damaged
                raise ValueError(f"replay/{name} holds a non-finite value")
        self.observations[:n] = data["observations"]
        self.next_observations[:n] = data["next_observations"]
        self.actions[:n] = data["actions"]
        self.rewards[:n] = data["rewards"]
        self.flags[:n] = data["flags"]
        for k, s in enumerate(self.states):
            s[:n] = data[f"state_{k}"]
        self.size = n
        self.position = n % self.capacity
        self._starting = bool(data["starting"])
