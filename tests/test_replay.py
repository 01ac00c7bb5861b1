"""Sequence replay: windows inside one episode, the validity mask, previous actions, wrap-around, persistence,
memory and sampling speed.

Every transition encodes where it comes from: observation (episode, step, 0), next observation
(episode, step + 1, 1), action and reward ``1000 * episode + step`` (exact in float32), so a test can check
each sampled step against what was written, independently of how the buffer indexes its rings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from rdpg_cli.replay import ReplayBuffer

# ----------------------------------------------------------------------------------------------------------
# Writing encoded episodes, and an independent model of what the buffer holds.


def code(episode: int, step: int) -> float:
    return float(1000 * episode + step)


@dataclass
class Written:
    """What was added, in order: the model the samples are checked against."""

    capacity: int
    order: list[tuple[int, int]] = field(default_factory=list)  # (episode, step) in add order
    lengths: dict[int, int] = field(default_factory=dict)  # transitions added per episode
    endings: dict[int, str | None] = field(default_factory=dict)  # terminated | truncated | None (open)

    @property
    def stored(self) -> set[tuple[int, int]]:
        return set(self.order[-self.capacity:])

    @property
    def stored_in_order(self) -> list[tuple[int, int]]:
        return self.order[-self.capacity:]


def add_episode(buffer: ReplayBuffer, written: Written, episode: int, length: int, ending: str | None,
                state_dim: int = 0) -> None:
    """``length`` transitions of ``episode``; the last one terminated / truncated, or open when None."""
    for step in range(length):
        last = step == length - 1
        state = (np.full(state_dim, code(episode, step), np.float32),) if state_dim else ()
        buffer.add(
            observation=np.array([episode, step, 0], np.float32),
            action=np.array([code(episode, step)], np.float32),
            reward=code(episode, step),
            next_observation=np.array([episode, step + 1, 1], np.float32),
            terminated=last and ending == "terminated",
            truncated=last and ending == "truncated",
            state=state,
        )
        written.order.append((episode, step))
    written.lengths[episode] = written.lengths.get(episode, 0) + length
    written.endings[episode] = ending


def filled(capacity: int, episodes: list[tuple[int, str | None]], state_dim: int = 0
           ) -> tuple[ReplayBuffer, Written]:
    buffer = ReplayBuffer(capacity, 3, 1, (state_dim,) if state_dim else ())
    written = Written(capacity)
    for episode, (length, ending) in enumerate(episodes):
        add_episode(buffer, written, episode, length, ending, state_dim)
    return buffer, written


def t0_of(batch, burn_in: int) -> list[tuple[int, int]]:
    obs = batch.observations[:, burn_in, :2].astype(int)
    return [(int(e), int(s)) for e, s in obs]


def check_sample(batch, written: Written, burn_in: int, sequence_length: int) -> None:
    """Every entry of a sample against the model: the mask, and each valid step's content."""
    window = burn_in + sequence_length
    b = batch.observations.shape[0]
    assert batch.observations.shape == (b, window, 3)
    assert batch.next_observations.shape == (b, window, 3)
    assert batch.actions.shape == batch.prev_actions.shape == (b, window, 1)
    assert batch.rewards.shape == batch.terminated.shape == batch.valid.shape == (b, window)
    for array in batch[:7]:
        assert array.dtype == np.float32
    stored = written.stored
    for row, (episode, start) in enumerate(t0_of(batch, burn_in)):
        assert (episode, start) in stored, "t0 must be a stored transition"
        for k in range(window):
            step = start + k - burn_in
            expected_valid = (episode, step) in stored  # same episode, written, not overwritten
            assert batch.valid[row, k] == float(expected_valid), (
                f"row {row}: t0 {(episode, start)}, position {k} (step {step}): valid {batch.valid[row, k]}")
            if not expected_valid:
                continue
            np.testing.assert_array_equal(batch.observations[row, k], [episode, step, 0])
            # the true next observation, also at an episode end (not the next episode's first one)
            np.testing.assert_array_equal(batch.next_observations[row, k], [episode, step + 1, 1])
            assert batch.actions[row, k, 0] == code(episode, step)
            assert batch.rewards[row, k] == code(episode, step)
            last = step == written.lengths[episode] - 1
            terminal = last and written.endings[episode] == "terminated"
            assert batch.terminated[row, k] == float(terminal)
            # the previous executed action; zero at an episode start (and where the previous transition is
            # no longer stored: never the newest data from the other end of the ring)
            previous = code(episode, step - 1) if (episode, step - 1) in stored else 0.0
            assert batch.prev_actions[row, k, 0] == previous


EPISODES: list[tuple[int, str | None]] = [
    (1, "terminated"), (2, "truncated"), (5, "terminated"), (12, "truncated"), (3, "truncated"),
    (7, "terminated"), (4, None),  # the last one is still running
]


# ----------------------------------------------------------------------------------------------------------
# Windows, mask, previous actions, flags


@pytest.mark.parametrize(("sequence_length", "burn_in"), [(1, 0), (4, 0), (8, 3), (5, 6), (16, 8)])
def test_windows_stay_inside_one_episode_and_every_field_matches(sequence_length, burn_in):
    buffer, written = filled(100, EPISODES)
    batch = buffer.sample(np.random.default_rng(0), 1500, sequence_length, burn_in)
    check_sample(batch, written, burn_in, sequence_length)
    assert set(t0_of(batch, burn_in)) == written.stored, "every transition can start a window"


@pytest.mark.parametrize("capacity", [100, 23])  # 23: wrapped around, the oldest episode cut
def test_one_step_windows_by_the_shortcut_equal_the_general_path(capacity, monkeypatch):
    buffer, _ = filled(capacity, EPISODES + EPISODES)
    shortcut = buffer.sample(np.random.default_rng(5), 300)
    monkeypatch.setattr(ReplayBuffer, "fast_single_steps", False)
    general = buffer.sample(np.random.default_rng(5), 300)
    for name, a, b in zip(shortcut._fields[:7], shortcut[:7], general[:7], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert shortcut.start_state == general.start_state == ()


def test_mask_of_an_episode_shorter_than_the_window():
    buffer, _ = filled(100, [(3, "terminated"), (2, "truncated"), (6, "terminated")])
    batch = buffer.sample(np.random.default_rng(1), 400, sequence_length=5, burn_in=0)
    rows = {t0: batch.valid[i].tolist() for i, t0 in enumerate(t0_of(batch, 0))}
    assert rows[(1, 0)] == [1, 1, 0, 0, 0]  # episode 1 has 2 steps: the rest of the window is padding
    assert rows[(1, 1)] == [1, 0, 0, 0, 0]
    assert rows[(0, 1)] == [1, 1, 0, 0, 0]
    assert rows[(2, 1)] == [1, 1, 1, 1, 1]
    assert rows[(2, 3)] == [1, 1, 1, 0, 0]  # runs into the end of the buffer's last episode


def test_burn_in_before_the_episode_start_is_invalid():
    buffer, _ = filled(100, [(4, "truncated"), (6, "terminated"), (3, None)])
    batch = buffer.sample(np.random.default_rng(2), 400, sequence_length=3, burn_in=3)
    rows = {t0: batch.valid[i].tolist() for i, t0 in enumerate(t0_of(batch, 3))}
    #                 burn-in  | trained
    assert rows[(1, 0)] == [0, 0, 0, 1, 1, 1]  # episode 0's last steps lie before: invalid
    assert rows[(1, 1)] == [0, 0, 1, 1, 1, 1]
    assert rows[(1, 4)] == [1, 1, 1, 1, 1, 0]  # episode 1 ends after its step 5
    assert rows[(0, 0)] == [0, 0, 0, 1, 1, 1]  # before the first transition ever written
    assert rows[(2, 2)] == [0, 1, 1, 1, 0, 0]  # the running episode: nothing written after its step 2
    first = next(i for i, t0 in enumerate(t0_of(batch, 3)) if t0 == (1, 0))
    np.testing.assert_array_equal(batch.prev_actions[first, 3:, 0], [0.0, code(1, 0), code(1, 1)])


def test_terminated_and_truncated_are_kept_apart():
    buffer, written = filled(100, [(3, "terminated"), (3, "truncated"), (3, "terminated")])
    batch = buffer.sample(np.random.default_rng(3), 300, sequence_length=1, burn_in=0)
    for i, (episode, step) in enumerate(t0_of(batch, 0)):
        expected = step == 2 and episode in (0, 2)
        assert batch.terminated[i, 0] == float(expected)
    check_sample(batch, written, 0, 1)


def test_open_episode_then_a_forced_episode_start_is_a_boundary():
    """``mark_episode_start`` while an episode is running (no end flag written): the next transitions are a
    new episode, and no window may run from the old one into the new one."""
    buffer = ReplayBuffer(100, 3, 1)
    written = Written(100)
    add_episode(buffer, written, 0, 5, None)
    buffer.mark_episode_start()
    add_episode(buffer, written, 1, 5, "terminated")
    for sequence_length, burn_in in [(4, 0), (3, 3)]:
        batch = buffer.sample(np.random.default_rng(4), 400, sequence_length, burn_in)
        check_sample(batch, written, burn_in, sequence_length)


# ----------------------------------------------------------------------------------------------------------
# Ring wrap-around


@pytest.mark.parametrize(("sequence_length", "burn_in"), [(1, 0), (6, 0), (6, 4)])
def test_wrap_around_overwrites_the_oldest_and_never_mixes_ends(sequence_length, burn_in):
    lengths = [9, 4, 13, 6, 2, 11, 8, 5, 14, 7, 3, 10]
    episodes = [(n, "terminated" if i % 3 == 0 else "truncated") for i, n in enumerate(lengths)]
    episodes[-1] = (10, None)
    buffer, written = filled(40, episodes)
    assert len(written.order) > 2 * 40 and len(written.order) % 40 != 0
    assert buffer.size == 40
    kept = buffer.state_dict()["observations"][:, :2].astype(int)
    assert [tuple(x) for x in kept] == written.stored_in_order  # the oldest were overwritten, in order
    batch = buffer.sample(np.random.default_rng(5), 1500, sequence_length, burn_in)
    check_sample(batch, written, burn_in, sequence_length)
    assert set(t0_of(batch, burn_in)) == written.stored


def test_window_at_the_newest_transition_does_not_reach_the_oldest():
    # capacity 10: after 25 single-episode steps the oldest stored is step 15 and the newest step 24;
    # physically the slot after the newest holds the oldest.
    buffer, written = filled(10, [(25, "truncated")])
    batch = buffer.sample(np.random.default_rng(6), 300, sequence_length=4, burn_in=2)
    check_sample(batch, written, 2, 4)
    rows = {t0: i for i, t0 in enumerate(t0_of(batch, 2))}
    np.testing.assert_array_equal(batch.valid[rows[(0, 24)]], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch.valid[rows[(0, 15)]], [0, 0, 1, 1, 1, 1])
    # the oldest stored step's previous action was overwritten: zero, not the newest action
    assert batch.prev_actions[rows[(0, 15)], 2, 0] == 0.0


# ----------------------------------------------------------------------------------------------------------
# Stored recurrent state (R2D2)


def test_start_state_is_the_state_recorded_at_the_window_start():
    buffer, written = filled(30, EPISODES, state_dim=2)
    batch = buffer.sample(np.random.default_rng(7), 800, sequence_length=3, burn_in=2)
    check_sample(batch, written, 2, 3)
    (state,) = batch.start_state
    assert state.shape == (800, 2)
    for row, (episode, start) in enumerate(t0_of(batch, 2)):
        first = (episode, start - 2)
        expected = code(*first) if first in written.stored else 0.0  # zero state where the episode starts later
        np.testing.assert_array_equal(state[row], [expected, expected])


# ----------------------------------------------------------------------------------------------------------
# Persistence


@pytest.mark.parametrize("state_dim", [0, 2])
def test_state_dict_round_trip_gives_identical_samples(state_dim):
    episodes = [(n, "truncated" if n % 2 else "terminated") for n in [6, 9, 3, 12, 7, 5]] + [(4, None)]
    buffer, _ = filled(32, episodes, state_dim)
    saved = buffer.state_dict()
    assert saved["flags"].shape == (32,) and all(v.dtype != object for v in saved.values())
    same = ReplayBuffer(32, 3, 1, (state_dim,) if state_dim else ())
    same.load_state_dict(saved)
    larger = ReplayBuffer(100, 3, 1, (state_dim,) if state_dim else ())
    larger.load_state_dict(saved)
    for other in (same, larger):
        for sequence_length, burn_in in [(1, 0), (5, 3)]:
            a = buffer.sample(np.random.default_rng(8), 64, sequence_length, burn_in)
            b = other.sample(np.random.default_rng(8), 64, sequence_length, burn_in)
            for x, y in zip(a[:7], b[:7], strict=True):
                np.testing.assert_array_equal(x, y)
            for x, y in zip(a.start_state, b.start_state, strict=True):
                np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(other.current_episode_actions(), buffer.current_episode_actions())
    # both continue the same way after more writes
    extra = Written(32)
    add_episode(buffer, extra, 7, 9, "terminated", state_dim)
    add_episode(same, Written(32), 7, 9, "terminated", state_dim)
    a = buffer.sample(np.random.default_rng(9), 64, 4, 2)
    b = same.sample(np.random.default_rng(9), 64, 4, 2)
    for x, y in zip(a[:7], b[:7], strict=True):
        np.testing.assert_array_equal(x, y)


def test_load_rejects_more_transitions_than_capacity():
    buffer, _ = filled(50, [(20, "truncated"), (20, "truncated")])
    with pytest.raises(ValueError, match="replay"):
        ReplayBuffer(30, 3, 1).load_state_dict(buffer.state_dict())


# ----------------------------------------------------------------------------------------------------------
# The episode in progress (resume)


def test_current_episode_actions():
    buffer = ReplayBuffer(20, 3, 1)
    written = Written(20)
    assert buffer.current_episode_actions().shape == (0, 1)
    add_episode(buffer, written, 0, 6, "terminated")
    assert buffer.current_episode_actions().shape == (0, 1)  # at a boundary: nothing in progress
    add_episode(buffer, written, 1, 4, None)
    np.testing.assert_array_equal(buffer.current_episode_actions()[:, 0], [code(1, s) for s in range(4)])
    buffer.mark_episode_start()  # a forced new episode: nothing in progress until the next write
    assert buffer.current_episode_actions().shape == (0, 1)

    wrapped = ReplayBuffer(20, 3, 1)
    w = Written(20)
    add_episode(wrapped, w, 0, 13, "truncated")
    add_episode(wrapped, w, 1, 12, None)  # wraps around the ring, and fits in it
    np.testing.assert_array_equal(wrapped.current_episode_actions()[:, 0], [code(1, s) for s in range(12)])
    for step in range(12, 21):  # the same episode goes on: 21 steps, more than the ring holds
        wrapped.add(np.zeros(3), np.array([code(1, step)]), 0.0, np.zeros(3), False, False)
    with pytest.raises(ValueError, match="longer than the replay memory"):
        wrapped.current_episode_actions()


def test_sampling_an_empty_buffer_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(10, 3, 1).sample(np.random.default_rng(0), 4)


# ----------------------------------------------------------------------------------------------------------
# Memory and speed


def test_memory_per_transition_is_the_raw_payload():
    capacity = 1_000_000
    buffer = ReplayBuffer(capacity, observation_dim=3, action_dim=1)  # Pendulum
    raw = 4 * (3 + 3 + 1 + 1) + 1  # obs, next obs, action, reward as float32, plus one byte of flags: 33
    per_transition = buffer.nbytes / capacity
    assert per_transition <= 1.1 * raw, per_transition
    assert buffer.nbytes < 100e6
    arrays = [v for v in vars(buffer).values() if isinstance(v, np.ndarray)]
    assert sum(a.nbytes for a in arrays) == buffer.nbytes  # nbytes counts every array it holds
    assert all(a.dtype != object for a in arrays)


def _large_buffer() -> ReplayBuffer:
    """1M Pendulum transitions in 200-step episodes, written directly (adding them one by one takes seconds)."""
    from rdpg_cli.replay import EPISODE_END, EPISODE_START

    buffer = ReplayBuffer(1_000_000, 3, 1)
    rng = np.random.default_rng(0)
    buffer.observations[:] = rng.normal(size=buffer.observations.shape)
    buffer.next_observations[:] = buffer.observations
    buffer.actions[:] = rng.uniform(-2, 2, size=buffer.actions.shape)
    buffer.flags[::200] |= EPISODE_START
    buffer.flags[199::200] |= EPISODE_END
    buffer.size, buffer.position = buffer.capacity, 0
    return buffer


def test_sampling_is_vectorised():
    """Loose bounds on the fastest of 20 draws (about 0.1 ms feed-forward, 0.6 ms for 8 + 16 steps here):
    generous enough not to be flaky, tight enough to catch a Python loop over samples or a pass over the
    whole ring per draw."""
    buffer = _large_buffer()
    rng = np.random.default_rng(1)
    for (sequence_length, burn_in), limit in [((1, 0), 2.0e-3), ((16, 8), 10.0e-3)]:
        times = []
        for _ in range(20):
            start = time.perf_counter()
            batch = buffer.sample(rng, 256, sequence_length, burn_in)
            times.append(time.perf_counter() - start)
        assert batch.valid.shape == (256, sequence_length + burn_in)
        assert min(times) < limit, f"fastest draw {min(times) * 1e3:.2f} ms"
