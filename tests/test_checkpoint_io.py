"""write_checkpoint / read_checkpoint on a hand-made CheckpointData: every variable, name, counter, string,
acting and replay array comes back identical (values, dtypes, order past 10 arrays); the write goes to a
temporary file in the same folder that is renamed over the target, so the old file stays whole until then
and after a failed write, and no temporary file is left behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from rdpg_cli.checkpoint import CheckpointData, read_checkpoint, write_checkpoint


def sample_data(shift: float = 0.0) -> CheckpointData:
    rng = np.random.default_rng(0)
    actor = [rng.normal(size=shape).astype(np.float32) + shift for shape in [(3, 4), (4,), (4, 1), (1,)]]
    critic = [rng.normal(size=(2, 2)).astype(np.float32) + i + shift for i in range(12)]  # past 0009
    return CheckpointData(
        config_yaml="env:\n  id: Pendulum-v1\n",
        env_id="Pendulum-v1",
        observation_dim=3,
        action_dim=1,
        low=np.array([-2.0], np.float32),
        high=np.array([2.0], np.float32),
        counters={"env_steps": 1234, "gradient_steps": 567, "episodes": 8},
        variables={
            "actor": actor,
            "critic": critic,
            "actor_optimizer": [np.array(42, np.int64), rng.normal(size=(3, 4)).astype(np.float32)],
            "counters": [np.array(7, np.int64), np.array(9, np.int64)],
        },
        variable_names={"actor": [f"actor/v{i}" for i in range(4)], "critic": [f"critic/v{i}" for i in range(12)],
                        "actor_optimizer": ["adam/iterations", "adam/m0"]},
        trainer_state='{"env_steps": 1234, "episodes": 8}',
        noise_state='{"ou_state": [0.25]}',
        acting={"state_0": rng.normal(size=(1, 8)).astype(np.float32), "prev_action": np.array([0.5], np.float32),
                "episode_actions": rng.normal(size=(5, 1)).astype(np.float32)},
        replay={"observations": rng.normal(size=(6, 3)).astype(np.float32),
                "flags": np.array([4, 0, 3, 4, 0, 2], np.uint8), "starting": np.array(False)},
    )


def assert_same(a: CheckpointData, b: CheckpointData) -> None:
    for name in ("config_yaml", "env_id", "observation_dim", "action_dim", "counters", "trainer_state",
                 "noise_state", "rdpg_version", "format_version", "full_observation_dim"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("low", "high"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.variables.keys() == b.variables.keys()
    for group, arrays in a.variables.items():
        assert len(arrays) == len(b.variables[group]), group
        for i, (x, y) in enumerate(zip(arrays, b.variables[group], strict=True)):
            assert x.dtype == y.dtype and x.shape == y.shape, (group, i)
            np.testing.assert_array_equal(x, y, err_msg=f"{group}/{i}")
    for name in ("acting", "replay"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.keys() == y.keys(), name
        for key in x:
            assert x[key].dtype == y[key].dtype, (name, key)
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}/{key}")


def test_every_part_of_a_checkpoint_round_trips(tmp_path):
    """What write_checkpoint stores, read_checkpoint gives back: each array in its place and dtype, the
    variables' names, the counters and the texts; without the replay when it is not asked for."""
    data = sample_data()
    path = tmp_path / "checkpoint.h5"
    write_checkpoint(path, data)
    back = read_checkpoint(path, with_replay=True)
    assert_same(data, back)
    for group, names in data.variable_names.items():
        assert back.variable_names[group] == names
    assert read_checkpoint(path, with_replay=False).replay is None


def test_the_whole_observation_size_round_trips_and_files_from_before_it_read_as_the_observation_size(tmp_path):
    """``full_observation_dim`` (what a critic over the whole observation reads) is kept; a checkpoint written
    before it was recorded holds none, and its critics read the observation: it reads back as observation_dim."""
    import h5py

    path = tmp_path / "checkpoint.h5"
    data = sample_data()
    data.full_observation_dim = 5
    write_checkpoint(path, data)
    assert read_checkpoint(path).full_observation_dim == 5
    with h5py.File(path, "r+") as f:
        del f.attrs["full_observation_dim"]
    assert read_checkpoint(path).full_observation_dim == data.observation_dim == 3


def test_a_checkpoint_is_renamed_into_place_from_a_temporary_file_beside_it(tmp_path, monkeypatch):
    """Until the rename, the target holds the previous complete checkpoint and the new one lies complete in a
    temporary file of the same folder (a rename within one file system is atomic); afterwards only the target
    is left."""
    path = tmp_path / "checkpoint.h5"
    old, new = sample_data(), sample_data(shift=1.0)
    write_checkpoint(path, old)
    renames: list[tuple[Path, Path]] = []
    replace = os.replace

    def checking_replace(src, dst):
        src, dst = Path(src), Path(dst)
        renames.append((src, dst))
        assert_same(read_checkpoint(dst), old)  # the old file is untouched until the rename
        assert_same(read_checkpoint(src), new)  # the new one is complete before it
        replace(src, dst)

    monkeypatch.setattr(os, "replace", checking_replace)
    write_checkpoint(path, new)
    monkeypatch.undo()
    assert len(renames) == 1
    src, dst = renames[0]
    assert dst == path and src.parent == path.parent and src != path
    assert_same(read_checkpoint(path), new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.h5"]


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    """A full disk while the new file is written (here at its fsync): an OSError, the previous file byte for
    byte, and no temporary file left in the folder."""
    path = tmp_path / "checkpoint.h5"
    write_checkpoint(path, sample_data())
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as info:
        write_checkpoint(path, sample_data(shift=1.0))
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.h5"]
