"""Loading a checkpoint runs no code from it and allocates no more than the file holds (issue 7, Security).

Crafted .h5 files (absurd or lying shapes, compressed or hard-linked data, wrong dtypes, links, extra or
missing groups and attributes, a stored config that asks for giant networks or holds a Python tag) must
each end in a one-line CheckpointError from ``read_checkpoint`` / ``load_agent`` (``restore_agent``),
and the oversized ones must be refused *before* their data is read: checked by recording every dataset
read, and by the peak memory of a fresh process that tries to load them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY as CONFTEST_TINY
import yaml

from rdpg_cli.checkpoint import (
    MAX_DATASET_ELEMENTS,
    CheckpointData,
    config_from_checkpoint,
    find_checkpoint,
    read_checkpoint,
    trainer_state_dict,
)
from rdpg_cli.errors import CheckpointError

TINY_RUN = ["train", "--preset", "pendulum", "--steps", "300", *CONFTEST_TINY,
            "--set", "train.eval_every=300"]
MiB = 1 << 20


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """checkpoint.h5 of a 300-step pendulum run with [16] networks, trained once per session (the same
    folder tests/test_bad_input.py uses, so a session that runs both trains once)."""
    base = tmp_path_factory.getbasetemp() / "tiny-run"
    checkpoint = base / "run" / "checkpoint.h5"
    if not checkpoint.exists():
        base.mkdir(exist_ok=True)
        result = subprocess.run([sys.executable, "-m", "rdpg_cli", *TINY_RUN, "--run-dir", "run", "--quiet"],
                                cwd=base, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    return checkpoint


def crafted(tiny_checkpoint: Path, tmp_path: Path, craft: Callable[[h5py.File], None],
            name: str = "crafted.h5") -> Path:
    path = tmp_path / name
    shutil.copy(tiny_checkpoint, path)
    with h5py.File(path, "r+") as f:
        craft(f)
    return path


def refused(path: Path, match: str, with_replay: bool = True) -> str:
    """read_checkpoint(path) raises a one-line CheckpointError naming the file and matching ``match``."""
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path, with_replay=with_replay)
    return one_line(info.value, path, match)


def one_line(error: Exception, path: Path, match: str) -> str:
    message = str(error)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert match in message, message
    return message


@pytest.fixture
def dataset_reads(monkeypatch) -> list[str]:
    """The names of the datasets whose data is read while the test runs."""
    reads: list[str] = []
    original = h5py.Dataset.__getitem__

    def recording(self, args, *rest, **kwargs):
        reads.append(self.name)
        return original(self, args, *rest, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    return reads


# ------------------------------------------------------------------------------------------ the baseline


def test_a_real_checkpoint_reads_and_restores(tiny_checkpoint):
    from rdpg_cli.policy import load_agent

    data = read_checkpoint(tiny_checkpoint, with_replay=True)
    assert data.replay is not None and data.counters["env_steps"] == 300
    assert data.action_dim == 1 and data.observation_dim == 3
    config, agent, _ = load_agent(tiny_checkpoint)
    assert config.network.actor_layers == [16]
    actor = agent.variable_groups()["actor"]
    np.testing.assert_array_equal(actor[0].numpy(), data.variables["actor"][0])


def test_every_dataset_is_read_once_and_the_budget_is_the_file(tiny_checkpoint, dataset_reads):
    read_checkpoint(tiny_checkpoint, with_replay=True)
    assert len(dataset_reads) == len(set(dataset_reads)) > 10
    with h5py.File(tiny_checkpoint) as f:
        total = sum(f[name].nbytes for name in dataset_reads)
    assert total <= tiny_checkpoint.stat().st_size


def test_the_replay_is_not_read_unless_asked(tiny_checkpoint, dataset_reads):
    assert read_checkpoint(tiny_checkpoint, with_replay=False).replay is None
    assert not [name for name in dataset_reads if name.startswith("/replay")]


# --------------------------------------------------------------- oversized data, refused before reading


def huge_chunked(f: h5py.File) -> None:
    """20 000 x 10 000 float64 (1.6 GB) with chunked storage never written: the file stays small."""
    del f["weights/actor/0000"]
    f.create_dataset("weights/actor/0000", shape=(20_000, 10_000), dtype="f8", chunks=(1, 1000))


def beyond_limit(f: h5py.File) -> None:
    del f["weights/actor/0000"]
    f.create_dataset("weights/actor/0000", shape=(MAX_DATASET_ELEMENTS + 1,), dtype="u1", chunks=(1000,))


def compressed_zeros(f: h5py.File) -> None:
    """400 MB of float32 zeros that gzip stores in a few hundred kB."""
    del f["replay/observations"]
    ds = f.create_dataset("replay/observations", shape=(100_000, 1000), dtype="f4", chunks=(10_000, 100),
                          compression="gzip", compression_opts=9)
    ds[:10_000] = np.zeros((10_000, 1000), np.float32)  # some chunks really written, the rest the fill value


def hard_links(f: h5py.File) -> None:
    """One 2 MB dataset linked 400 times into the acting state: 800 MB to read from a ~2 MB file."""
    source = f["acting"].create_dataset("big", data=np.ones((2 * MiB // 8,), np.float64))
    for i in range(400):
        f["acting"][f"copy_{i}"] = source


def huge_acting(f: h5py.File) -> None:
    f["acting"].create_dataset("state_0", shape=(15_000, 10_000), dtype="f4", chunks=(1, 10_000))


OVERSIZED = {
    "huge chunked weights": (huge_chunked, "weights/actor/0000", "refused unread"),
    "more elements than any checkpoint": (beyond_limit, "weights/actor/0000", "absurd shape"),
    "compressed zeros in the replay": (compressed_zeros, "replay/observations", "refused unread"),
    "one dataset hard-linked 400 times": (hard_links, "acting/copy_", "more than the file holds"),
    "huge acting state": (huge_acting, "acting/state_0", "refused unread"),
}


@pytest.mark.parametrize("case", list(OVERSIZED), ids=list(OVERSIZED))
def test_oversized_data_is_refused_before_it_is_read(case, tiny_checkpoint, tmp_path, dataset_reads):
    craft, where, match = OVERSIZED[case]
    path = crafted(tiny_checkpoint, tmp_path, craft)
    assert path.stat().st_size < 8 * MiB
    dataset_reads.clear()
    message = refused(path, match)
    assert f"'{where}" in message
    if case != "one dataset hard-linked 400 times":
        assert f"/{where}" not in dataset_reads
    else:  # read until the budget (the file's size) ran out, and not one copy more
        assert sum(name.startswith("/acting/") for name in dataset_reads) <= 3


PEAK_MEMORY = textwrap.dedent("""
    import json, resource, sys
    from rdpg_cli.checkpoint import read_checkpoint
    from rdpg_cli.errors import CheckpointError
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        read_checkpoint(sys.argv[1], with_replay=True)
        error = None
    except CheckpointError as exc:
        error = str(exc)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"error": error, "grew_kib": after - before}))
""")


@pytest.mark.parametrize("case", list(OVERSIZED), ids=list(OVERSIZED))
def test_oversized_data_does_not_raise_peak_memory(case, tiny_checkpoint, tmp_path):
    """In a fresh process (whose peak memory is not already TensorFlow's), trying to load each crafted file
    leaves the peak resident memory within 64 MiB of what it was: nothing near the claimed sizes."""
    path = crafted(tiny_checkpoint, tmp_path, OVERSIZED[case][0])
    result = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] and OVERSIZED[case][2] in report["error"]
    assert report["grew_kib"] < 64 * 1024, report


# ------------------------------------------------------------------------------ dtypes, links, structure


def replace(path: str, **create) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        del f[path]
        f.create_dataset(path, **create)
    return craft


def delete(path: str) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        del f[path]
    return craft


def put(path: str, value) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        if path in f:
            del f[path]
        f[path] = value
    return craft


def replace_with_group(path: str) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        del f[path]
        f.create_group(path)
    return craft


STRUCTURE = {
    "strings for weights": (replace("weights/actor/0000", data=np.array(["a", "b"], dtype=h5py.string_dtype())),
                            "'weights/actor/0000' has dtype object; rdpg writes numbers only"),
    "compound dtype": (replace("weights/actor/0001", data=np.zeros(16, dtype=[("a", "f4"), ("b", "i4")])),
                       "'weights/actor/0001' has dtype"),
    "complex numbers": (replace("weights/critic_0/0001", data=np.zeros(16, np.complex64)),
                        "'weights/critic_0/0001' has dtype complex64"),
    "object references": (lambda f: f["acting"].create_dataset("ref", data=f["weights"].ref,
                                                               dtype=h5py.ref_dtype),
                          "'acting/ref' has dtype"),
    "empty dataspace": (replace("weights/actor/0002", data=h5py.Empty("f4")), "'weights/actor/0002' has no dataspace"),
    "external link": (put("weights/actor/0000", h5py.ExternalLink("/etc/elsewhere.h5", "/x")),
                      "'weights/actor/0000' is a link (ExternalLink); rdpg writes none"),
    "soft link": (put("weights/actor/0000", h5py.SoftLink("/weights/critic_0/0000")),
                  "'weights/actor/0000' is a link (SoftLink)"),
    "missing weights group": (delete("weights"), "damaged checkpoint: 'weights' is missing"),
    "missing optimizers group": (delete("optimizers"), "damaged checkpoint: 'optimizers' is missing"),
    "weights a dataset": (lambda f: (f.__delitem__("weights"), f.create_dataset("weights", data=[1, 2])),
                          "'weights' should be a group, not a dataset"),
    "group where a variable belongs": (replace_with_group("weights/actor/0000"),
                                       "'weights/actor/0000' should be a dataset, not a group"),
    "variable with a stray name": (put("weights/actor/evil", np.zeros(3, np.float32)),
                                   "'weights/actor/evil' is not a numbered variable"),
    "gap in the numbering": (delete("weights/actor/0001"), "'weights/actor/0002' is not a numbered variable"),
    "unknown top-level group": (lambda f: f.create_group("plugins"), "unexpected member 'plugins'"),
    "group named counters inside weights": (lambda f: f["weights"].create_group("counters"),
                                            "'weights/counters' clashes"),
}


@pytest.mark.parametrize("case", list(STRUCTURE), ids=list(STRUCTURE))
def test_wrong_dtypes_links_and_structure_are_refused(case, tiny_checkpoint, tmp_path):
    craft, match = STRUCTURE[case]
    refused(crafted(tiny_checkpoint, tmp_path, craft), match)


# --------------------------------------------------------------------------------------------- attributes


def set_attr(name: str, value, **create) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        if create:
            f.attrs.create(name, value, **create)
        else:
            f.attrs[name] = value
    return craft


def delete_attr(name: str) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        del f.attrs[name]
    return craft


ATTRIBUTES = {
    "no format": (delete_attr("format"), "an HDF5 file, but not an rdpg checkpoint"),
    "format as a number": (set_attr("format", 7), "an HDF5 file, but not an rdpg checkpoint"),
    "format as an array of strings": (set_attr("format", ["rdpg-checkpoint"] * 3),
                                      "an HDF5 file, but not an rdpg checkpoint"),
    "newer format_version": (set_attr("format_version", 2), "format_version 2 is newer than this rdpg supports"),
    "format_version zero": (set_attr("format_version", 0), "damaged checkpoint: format_version 0"),
    "format_version as text": (set_attr("format_version", "1"), "attribute 'format_version' should be one number"),
    "missing action_dim": (delete_attr("action_dim"), "attribute 'action_dim' is missing"),
    "missing config": (delete_attr("config"), "attribute 'config' is missing"),
    "missing env_id": (delete_attr("env_id"), "attribute 'env_id' is missing"),
    "missing counter": (delete_attr("env_steps"), "attribute 'env_steps' is missing"),
    "action_dim as text": (set_attr("action_dim", "one"), "attribute 'action_dim' should be one number"),
    "action_dim as a float": (set_attr("action_dim", 1.0), "attribute 'action_dim' should be one number"),
    "action_dim absurd": (set_attr("action_dim", 10**9), "attribute 'action_dim' is 1000000000, outside"),
    "observation_dim zero": (set_attr("observation_dim", 0), "attribute 'observation_dim' is 0, outside"),
    "negative counter": (set_attr("episodes", -1), "attribute 'episodes' is -1, outside"),
    "bounds of the wrong length": (set_attr("low", np.zeros(1000, np.float32)),
                                   "attribute 'low' should hold 1 numbers, not float32 of shape (1000,)"),
    "bounds as text": (set_attr("high", "2.0"), "attribute 'high' should hold 1 numbers"),
    "bounds with NaN": (set_attr("low", np.array([np.nan], np.float32)), "attribute 'low' holds non-finite values"),
    "low above high": (set_attr("low", np.array([3.0], np.float32)), "bounds low [3.0] are not below high [2.0]"),
    "config as a number": (set_attr("config", 5), "attribute 'config' should be text"),
    "config as an array of text": (set_attr("config", ["a", "b"]), "attribute 'config' should be text"),
    "config not UTF-8": (set_attr("config", np.bytes_(b"\xff\xfe"), dtype="S2"), "attribute 'config' is not UTF-8"),
    "variable name as a number array": (lambda f: f["weights/actor/0000"].attrs.__setitem__("name", [1, 2]),
                                        "attribute 'weights/actor/0000@name' should be text"),
}


@pytest.mark.parametrize("case", list(ATTRIBUTES), ids=list(ATTRIBUTES))
def test_missing_or_wrong_attributes_are_refused(case, tiny_checkpoint, tmp_path):
    craft, match = ATTRIBUTES[case]
    refused(crafted(tiny_checkpoint, tmp_path, craft), match)


def test_unknown_attributes_are_ignored_unread(tiny_checkpoint, tmp_path):
    """An attribute rdpg does not know is never read (so cannot cost memory), and does not matter."""
    path = crafted(tiny_checkpoint, tmp_path, set_attr("comment", "written by hand"))
    assert read_checkpoint(path).env_id == "Pendulum-v1"


# ------------------------------------------------------------ the stored config and the agent it builds


def stored_config(change: Callable[[dict], None] | None = None, text: str | None = None):
    def craft(f: h5py.File) -> None:
        if text is not None:
            f.attrs["config"] = text
            return
        config = yaml.safe_load(f.attrs["config"])
        change(config)
        f.attrs["config"] = yaml.safe_dump(config)
    return craft


def load(path: Path) -> str:
    from rdpg_cli.policy import load_agent

    with pytest.raises(CheckpointError) as info:
        load_agent(path)
    return str(info.value)


def test_a_python_tag_in_the_stored_config_is_never_run(tiny_checkpoint, tmp_path):
    marker = tmp_path / "ran"
    path = crafted(tiny_checkpoint, tmp_path,
                   stored_config(text=f"env: !!python/object/apply:os.system ['touch {marker}']\n"))
    message = load(path)
    assert message == f"{path}: damaged checkpoint: the stored config does not parse"
    assert not marker.exists()


def test_a_stored_config_that_is_not_yaml(tiny_checkpoint, tmp_path):
    path = crafted(tiny_checkpoint, tmp_path, stored_config(text="env: [\n"))
    assert load(path) == f"{path}: damaged checkpoint: the stored config does not parse"


def test_a_stored_config_nested_too_deep_for_the_parser(tiny_checkpoint, tmp_path):
    path = crafted(tiny_checkpoint, tmp_path, stored_config(text="env: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert load(path) == f"{path}: damaged checkpoint: the stored config does not parse"


def test_an_invalid_stored_config_names_the_key(tiny_checkpoint, tmp_path):
    path = crafted(tiny_checkpoint, tmp_path, stored_config(lambda c: c["agent"].update(gamma=7.0)))
    assert load(path) == f"{path} (stored config): agent.gamma: 7.0 must be in (0, 1]"


def test_a_stored_config_for_another_env(tiny_checkpoint, tmp_path):
    path = crafted(tiny_checkpoint, tmp_path, stored_config(lambda c: c["env"].update(id="MountainCarContinuous-v0")))
    assert "the stored config is for 'MountainCarContinuous-v0', the file's env_id says 'Pendulum-v1'" in load(path)


def test_a_stored_config_asking_for_giant_networks_is_refused_before_building_them(tiny_checkpoint, tmp_path,
                                                                                    monkeypatch):
    import rdpg_cli.policy

    def no_agent(*args, **kwargs):
        raise AssertionError("the agent was built: its networks were allocated before the check")

    monkeypatch.setattr(rdpg_cli.policy, "Agent", no_agent)
    path = crafted(tiny_checkpoint, tmp_path,
                   stored_config(lambda c: c["network"].update(actor_layers=[100_000, 100_000])))
    message = load(path)
    assert message.startswith(f"{path}: the stored config's networks need at least 10000")
    assert message.endswith("the config does not match the weights")


def test_a_giant_whole_observation_for_the_critic_is_refused_before_building_it(tiny_checkpoint, tmp_path,
                                                                               monkeypatch):
    """A critic over the whole observation (network.critic_input) is sized by the file's full_observation_dim:
    the guard counts it, so a crafted size cannot make the agent allocate gigabytes before its shapes are read."""
    import rdpg_cli.policy

    def no_agent(*args, **kwargs):
        raise AssertionError("the agent was built: its networks were allocated before the check")

    def craft(f: h5py.File) -> None:
        stored_config(lambda c: c["network"].update(critic_input="full_observation", critic_layers=[4096]))(f)
        f.attrs["full_observation_dim"] = 1_000_000

    monkeypatch.setattr(rdpg_cli.policy, "Agent", no_agent)
    message = load(crafted(tiny_checkpoint, tmp_path, craft))
    assert "the stored config's networks need at least 4096" in message, message
    assert message.endswith("the config does not match the weights")


def test_a_plausible_stored_config_mismatch_is_caught_by_shape(tiny_checkpoint, tmp_path):
    path = crafted(tiny_checkpoint, tmp_path, stored_config(lambda c: c["network"].update(critic_layers=[24])))
    assert load(path) == f"{path}: 'critic_0' array 0 has shape (4, 16), the config's networks need (4, 24)"


RESTORE = {
    "weights of another shape": (replace("weights/actor/0000", data=np.zeros((3, 17), np.float32)),
                                 "'actor' array 0 has shape (3, 17), the config's networks need (3, 16)"),
    "a network missing": (delete("weights/target_actor"), "damaged checkpoint: 'target_actor' is missing"),
    "an optimizer missing": (delete("optimizers/critic_optimizer"), "'critic_optimizer' is missing"),
    "a variable missing": (delete("weights/actor/0003"), "'actor' holds 3 arrays, the config's networks have 4"),
    "a variable too many": (put("weights/actor/0004", np.zeros(1, np.float32)),
                            "'actor' holds 5 arrays, the config's networks have 4"),
    "an extra network": (lambda f: f["weights"].copy("actor", "evil"), "'evil' is not part of the agent"),
    "integers for float weights": (replace("weights/actor/0001", data=np.zeros(16, np.int64)),
                                   "'actor' array 1 has dtype int64, the variable is float32"),
    "floats for the step counter": (replace("optimizers/actor_optimizer/0000", data=np.float32(3)),
                                    "'actor_optimizer' array 0 has dtype float32"),
    "NaN weights": (replace("weights/critic_0/0002", data=np.full((16, 1), np.nan, np.float32)),
                    "'critic_0' array 2 holds non-finite values"),
}


@pytest.mark.parametrize("case", list(RESTORE), ids=list(RESTORE))
def test_restore_agent_refuses_what_does_not_fit_the_agent(case, tiny_checkpoint, tmp_path):
    craft, match = RESTORE[case]
    path = crafted(tiny_checkpoint, tmp_path, craft)
    one_line(CheckpointError(load(path)), path, match)


def test_float64_weights_of_the_right_shape_are_accepted(tiny_checkpoint, tmp_path):
    """Widened precision (a file converted by hand) is still the same numbers: loaded, cast to float32."""
    from rdpg_cli.policy import load_agent

    with h5py.File(tiny_checkpoint) as f:
        original = f["weights/actor/0000"][()]
    path = crafted(tiny_checkpoint, tmp_path, replace("weights/actor/0000", data=original.astype(np.float64)))
    _, agent, _ = load_agent(path)
    np.testing.assert_array_equal(agent.variable_groups()["actor"][0].numpy(), original)


# ------------------------------------------------------------------------------------------- the rest


def test_trainer_state_must_be_a_json_object():
    data = CheckpointData(config_yaml="", env_id="x", observation_dim=1, action_dim=1, low=np.zeros(1),
                          high=np.ones(1), counters={}, variables={}, trainer_state="not json")
    with pytest.raises(CheckpointError, match="trainer_state is not JSON"):
        trainer_state_dict(data)
    data.trainer_state = "[1, 2]"
    with pytest.raises(CheckpointError, match="trainer_state is not a JSON object"):
        trainer_state_dict(data)
    data.trainer_state = "[" * 100_000
    with pytest.raises(CheckpointError, match="trainer_state is not JSON"):
        trainer_state_dict(data)


def test_paths_that_are_not_checkpoint_files(tmp_path):
    assert str(excinfo(read_checkpoint, tmp_path / "nope.h5")) == f"{tmp_path / 'nope.h5'}: checkpoint not found"
    assert str(excinfo(read_checkpoint, tmp_path)) == f"{tmp_path}: is a folder, not a checkpoint file"
    assert str(excinfo(read_checkpoint, Path("/dev/zero"))) == "/dev/zero: not a regular file"
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    assert str(excinfo(read_checkpoint, fifo)) == f"{fifo}: not a regular file"  # not a read that blocks
    long = tmp_path / ("c" * 300 + ".h5")
    assert "File name too long" in str(excinfo(read_checkpoint, long))
    assert str(excinfo(find_checkpoint, tmp_path)) == f"{tmp_path}: no checkpoint.h5 in this folder"
    (tmp_path / "config.yaml").write_text("env: {id: Pendulum-v1}\n")  # a run killed before its first checkpoint
    again = f"rdpg train --preset {tmp_path}/config.yaml --run-dir {tmp_path} --force"
    assert str(excinfo(find_checkpoint, tmp_path)) == (
        f"{tmp_path}: no checkpoint.h5 in this folder (its run stopped before the first one: start it again with "
        f"{again})")
    (tmp_path / "best.h5").write_bytes(b"")  # an evaluation came first: starting again would remove it
    assert str(excinfo(find_checkpoint, tmp_path)) == (
        f"{tmp_path}: no checkpoint.h5 in this folder (its run stopped before the first one; best.h5 holds its "
        f"best evaluation: copy it into a new folder as checkpoint.h5 to train on from it, or start again, which "
        f"removes it: {again})")
    (tmp_path / "empty.h5").write_bytes(b"")
    assert "not an HDF5 file" in str(excinfo(read_checkpoint, tmp_path / "empty.h5"))


def test_truncated_checkpoints(tiny_checkpoint, tmp_path):
    data = tiny_checkpoint.read_bytes()
    for keep in (8, 100, 2048, len(data) // 2, len(data) - 100):
        path = tmp_path / f"cut-{keep}.h5"
        path.write_bytes(data[:keep])
        message = str(excinfo(read_checkpoint, path))
        assert "\n" not in message and message.startswith(f"{path}: ")
        assert "truncated or damaged" in message or "damaged checkpoint" in message, message


def excinfo(function, *args) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        function(*args)
    assert "\n" not in str(info.value)
    return info.value


def test_a_config_from_a_checkpoint_is_validated_like_a_preset(tiny_checkpoint):
    data = read_checkpoint(tiny_checkpoint, with_replay=False)
    config = config_from_checkpoint(data, "ckpt")
    assert config.env.id == data.env_id == "Pendulum-v1"
