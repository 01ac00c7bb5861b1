"""The episode flags the replay memory writes, read directly (sampling stops at an episode boundary by its
start flag alone, so a missing end flag is invisible to the sampling tests): TERMINATED for a terminal state
only, EPISODE_END for a terminated or truncated step, EPISODE_START for the first step after one, after a
forced start, and after a saved memory that ended on a boundary is loaded."""

from __future__ import annotations

import numpy as np

from rdpg_cli.replay import EPISODE_END, EPISODE_START, TERMINATED, ReplayBuffer


def add(buffer: ReplayBuffer, terminated: bool = False, truncated: bool = False) -> None:
    buffer.add(np.zeros(3), np.zeros(1), 0.0, np.zeros(3), terminated, truncated)


def test_flags_mark_terminal_states_episode_ends_and_starts():
    """Each transition's flags, in the order written, through a terminated, a truncated, a forced and an open
    episode; and a loaded memory goes on exactly as the saved one would."""
    buffer = ReplayBuffer(20, 3, 1)
    add(buffer)
    add(buffer, terminated=True)
    add(buffer)
    add(buffer, truncated=True)
    add(buffer, terminated=True, truncated=True)  # a one-step episode: start and end
    add(buffer)
    buffer.mark_episode_start()  # the episode in progress is abandoned (no end flag)
    add(buffer)
    add(buffer)
    start, end, terminal = int(EPISODE_START), int(EPISODE_END), int(TERMINATED)
    expected = [start, end | terminal, start, end, start | end | terminal, start, start, 0]
    assert buffer.flags[:8].tolist() == expected

    saved = buffer.state_dict()
    assert saved["flags"].tolist() == expected and not bool(saved["starting"])
    add(buffer, truncated=True)
    at_boundary = buffer.state_dict()
    assert bool(at_boundary["starting"])
    loaded = ReplayBuffer(20, 3, 1)
    loaded.load_state_dict(at_boundary)
    add(loaded)
    add(buffer)
    np.testing.assert_array_equal(loaded.flags[:10], buffer.flags[:10])
    assert loaded.flags[9] == EPISODE_START
