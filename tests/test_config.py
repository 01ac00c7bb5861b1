"""rdpg_cli.config (and the action-space checks of rdpg_cli.envs): defaults, every invalid-preset case of
issue 2 as a one-line ConfigError naming the file and key, ``--set`` overrides, and the shipped presets."""

from __future__ import annotations

import copy
import re
import time
import dataclasses
import math
import types
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from rdpg_cli import config as cfg
from rdpg_cli.config import (
    SECTIONS,
    Config,
    all_keys,
    apply_overrides,
    config_from_dict,
    field_docs,
    load_config,
    parse_override,
    read_yaml,
    resolve_preset_path,
    shipped_presets,
)
from rdpg_cli.envs import env_spec, make_env, resolve_bounds
from rdpg_cli.errors import ConfigError, EnvironmentSetupError

PENDULUM = {"env": {"id": "Pendulum-v1"}, "action_bounds": {"low": [-2.0], "high": [2.0]}}


def config_error(data: object, source: str = "preset.yaml") -> str:
    """The message of the ConfigError ``config_from_dict`` raises; asserts it is one non-empty line."""
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, source=source)
    message = str(info.value)
    assert message and "\n" not in message and "\r" not in message
    return message


def with_value(dotted: str, value: object, base: dict | None = None) -> dict:
    data = copy.deepcopy(base if base is not None else PENDULUM)
    section, key = dotted.split(".")
    data.setdefault(section, {})[key] = value
    return data


def write(tmp_path: Path, text: str | bytes, name: str = "preset.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# ----------------------------------------------------------------------------------------------- defaults


def test_every_key_but_env_id_has_a_default():
    config = config_from_dict({"env": {"id": "Pendulum-v1"}})
    assert config == Config(env=cfg.EnvConfig(id="Pendulum-v1"))
    assert config.agent.gamma == 0.99
    assert config.agent.batch_size == 256
    assert config.agent.bounding == "invert"
    assert config.agent.noise == "gaussian"
    assert config.network.actor_layers == [256, 256]
    assert config.network.recurrent == "none" and not config.recurrent
    assert config.replay.size == 1_000_000
    assert config.replay.sequence_length == 1
    assert config.train.steps == 10_000
    assert config.train.save_replay is True
    assert config.action_bounds.low is None and config.action_bounds.high is None
    assert config.name == "custom"


def test_env_id_is_required():
    message = config_error({"agent": {"gamma": 0.9}})
    assert message.startswith("preset.yaml: env.id: missing")


def test_every_field_is_documented():
    docs = field_docs()
    assert set(docs) == set(all_keys())  # the top-level name and description too
    assert all(doc.strip() and "\n" not in doc for doc in docs.values())


def test_config_is_frozen_and_lists_are_not_shared():
    a = config_from_dict({"env": {"id": "Pendulum-v1"}})
    b = config_from_dict({"env": {"id": "Pendulum-v1"}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.agent.gamma = 0.5  # type: ignore[misc]
    a.network.actor_layers.append(1)
    assert b.network.actor_layers == [256, 256]


def test_resolved_yaml_loads_back_to_the_same_config():
    config = config_from_dict(PENDULUM | {"agent": {"gamma": 0.95, "clipnorm": 1.0}, "name": "x"})
    assert config_from_dict(yaml.safe_load(config.to_yaml())) == config


def test_replace_validates_again():
    config = config_from_dict(PENDULUM)
    assert config.replace("agent", gamma=0.5).agent.gamma == 0.5
    with pytest.raises(ConfigError, match=r"agent\.gamma: 2\.0 must be in \(0, 1\]"):
        config.replace("agent", gamma=2.0)


def test_whole_floats_are_accepted_for_integers():
    config = config_from_dict(with_value("agent.batch_size", 64.0))
    assert config.agent.batch_size == 64 and isinstance(config.agent.batch_size, int)


def test_integers_are_accepted_for_floats_and_target_update_may_be_a_hard_copy_period():
    config = config_from_dict(with_value("agent.target_update", 2))
    assert config.agent.target_update == 2.0
    assert config_from_dict(with_value("agent.gamma", 1)).agent.gamma == 1.0


# ------------------------------------------------------------------------------------------- error cases

ERROR_CASES = [
    # (id, data, fragments the message must hold)
    ("unknown key, nearest suggested", with_value("agent.gama", 0.9),
     ["preset.yaml: agent.gama: unknown key", "did you mean 'agent.gamma'"]),
    ("unknown key in env", with_value("env.max_steps", 5), ["env.max_steps: unknown key"]),
    ("unknown section, nearest suggested", PENDULUM | {"agnet": {"gamma": 0.9}},
     ["preset.yaml: agnet: unknown section", "did you mean 'agent'"]),
    ("non-string key", PENDULUM | {"agent": {1: 2}}, ["agent.1: unknown key"]),
    ("section not a mapping", PENDULUM | {"agent": [1, 2]}, ["agent: expected a mapping", "a list"]),
    ("string for an integer", with_value("agent.batch_size", "64"),
     ["agent.batch_size: expected an integer", "the string '64'"]),
    ("string for a number, YAML 1.1 exponent", with_value("agent.actor_lr", "1e-3"),
     ["agent.actor_lr: expected", "'1e-3'", "1.0e-03"]),
    ("list for a scalar", with_value("agent.batch_size", [64]), ["agent.batch_size: expected an integer", "a list"]),
    ("mapping for a scalar", with_value("agent.gamma", {"a": 1}), ["agent.gamma: expected a number", "a mapping"]),
    ("scalar for a list", with_value("network.actor_layers", 64), ["network.actor_layers: expected a list"]),
    ("fraction for an integer", with_value("agent.batch_size", 64.5), ["agent.batch_size: expected an integer"]),
    ("boolean for an integer", with_value("agent.batch_size", True), ["agent.batch_size", "the boolean true"]),
    ("boolean spelled as a string", with_value("agent.twin_critics", "true"),
     ["agent.twin_critics: expected true/false", "without quotes"]),
    ("yes spelled as a string", with_value("train.save_replay", "yes"), ["train.save_replay: expected true/false"]),
    ("integer for a boolean", with_value("agent.twin_critics", 1), ["agent.twin_critics: expected true/false"]),
    ("choice not offered", with_value("agent.noise", "pink"), ["agent.noise: expected 'gaussian' | 'ou' | 'none'"]),
    ("zero batch", with_value("agent.batch_size", 0), ["agent.batch_size: 0 must be > 0"]),
    ("negative replay size", with_value("replay.size", -1), ["replay.size: -1 must be > 0"]),
    ("zero steps", with_value("train.steps", 0), ["train.steps: 0 must be > 0"]),
    ("zero units", with_value("network.units", 0), ["network.units: 0 must be > 0"]),
    ("zero layer size", with_value("network.actor_layers", [64, 0]),
     ["network.actor_layers: [64, 0] every entry must be > 0"]),
    ("negative warm-up", with_value("agent.warmup_steps", -5), ["agent.warmup_steps: -5 must be >= 0"]),
    ("gamma zero", with_value("agent.gamma", 0.0), ["agent.gamma: 0.0 must be in (0, 1]"]),
    ("gamma above one", with_value("agent.gamma", 1.01), ["agent.gamma: 1.01 must be in (0, 1]"]),
    ("tau zero", with_value("agent.target_update", 0.0), ["agent.target_update: 0.0 must be > 0"]),
    ("tau negative", with_value("agent.target_update", -0.1), ["agent.target_update: -0.1 must be > 0"]),
    ("tau above one, not a whole period", with_value("agent.target_update", 1.5),
     ["agent.target_update: 1.5 must be < 1 (soft) or a whole number"]),
    ("NaN", with_value("agent.gamma", math.nan), ["agent.gamma: nan is not a finite number"]),
    ("inf", with_value("agent.actor_lr", math.inf), ["agent.actor_lr: inf is not a finite number"]),
    ("-inf in bounds", with_value("action_bounds.low", [-math.inf]), ["action_bounds.low", "non-finite"]),
    ("NaN in env.kwargs", with_value("env.kwargs", {"g": math.nan}, {"env": {"id": "Pendulum-v1"}}),
     ["env.kwargs: holds the non-finite number nan"]),
    ("NaN deep in env.kwargs", with_value("env.kwargs", {"a": [{"b": [math.inf]}]}, {"env": {"id": "Pendulum-v1"}}),
     ["env.kwargs: holds the non-finite number inf"]),
    ("integer beyond 64 bits", with_value("train.steps", 2**64), ["train.steps: 18446744073709551616 is too large"]),
    ("number beyond a float", with_value("agent.gamma", 10**400), ["agent.gamma:", "is too large"]),
    ("bounds of different lengths", with_value("action_bounds.low", [-1.0, -1.0]),
     ["action_bounds: low has 2 entries and high 1"]),
    ("empty bounds", {"env": {"id": "Pendulum-v1"}, "action_bounds": {"low": [], "high": []}},
     ["action_bounds: low has 0 entries"]),
    ("only low bound", {"env": {"id": "Pendulum-v1"}, "action_bounds": {"low": [-1.0]}},
     ["action_bounds: give both low and high"]),
    ("low equal to high", with_value("action_bounds.low", [2.0]),
     ["action_bounds: dimension 0: low 2.0 must be < high 2.0"]),
    ("low above high", {"env": {"id": "X-v0"}, "action_bounds": {"low": [0.0, 1.0], "high": [1.0, 0.5]}},
     ["action_bounds: dimension 1: low 1.0 must be < high 0.5"]),
    ("kwargs with a number for a key", with_value("env.kwargs", {1: 2}),
     ["env.kwargs: expected a mapping, got a mapping whose key 1 is not a string"]),
    # Actions are float32: bounds fine as Python floats can be equal, infinite, or too far apart there.
    ("bounds equal in float32", {"env": {"id": "X-v0"}, "action_bounds": {"low": [1.0], "high": [1.0000000001]}},
     ["action_bounds: dimension 0: low 1.0 and high 1.0000000001 are equal in float32"]),
    ("bounds that round to zero", {"env": {"id": "X-v0"}, "action_bounds": {"low": [-1e-46], "high": [1e-46]}},
     ["action_bounds: dimension 0: low -1e-46 and high 1e-46 are equal in float32"]),
    ("bound beyond float32", {"env": {"id": "X-v0"}, "action_bounds": {"low": [-1.0e39], "high": [1.0]}},
     ["action_bounds: dimension 0: low -1e+39 is beyond float32's range"]),
    ("width beyond float32", {"env": {"id": "X-v0"}, "action_bounds": {"low": [-3.0e38], "high": [3.0e38]}},
     ["action_bounds: dimension 0: the width high - low = 6e+38 is beyond float32's range"]),
    ("burn-in without recurrence", with_value("replay.burn_in", 4), ["replay.burn_in: 4 needs network.recurrent"]),
    ("window larger than the replay", with_value("network.recurrent", "lstm", with_value(
        "replay.sequence_length", 10, with_value("replay.size", 5))), ["replay.size: 5 is smaller than one window"]),
    ("replay smaller than a batch", with_value("replay.size", 100),
     ["preset.yaml: replay.size: 100 is smaller than agent.batch_size 256; the agent would never learn"]),
    ("replay one short of a batch", with_value("agent.batch_size", 32, with_value("replay.size", 31)),
     ["replay.size: 31 is smaller than agent.batch_size 32"]),
    ("string in a list of integers", with_value("network.actor_layers", ["a"]),
     ["network.actor_layers: expected a list of integers, got the string 'a' in ['a']"]),
    ("fraction in a list of integers", with_value("network.critic_layers", [64, 64.5]),
     ["network.critic_layers: expected a list of integers, got 64.5 in [64, 64.5]"]),
    ("boolean in optional indices", with_value("env.observation_indices", [0, True]),
     ["env.observation_indices: expected a list of integers or null, got the boolean true in [0, True]"]),
    ("nested list in bounds", with_value("action_bounds.high", [[2.0]]),
     ["action_bounds.high: expected a list of numbers or null, got a list in [[2.0]]"]),
    ("too large integer in optional indices", with_value("env.observation_indices", [1, 2**64]),
     ["env.observation_indices: expected a list of integers or null, got 18446744073709551616 (too large) in "
      "[1, 18446744073709551616]"]),
    ("annealing without steps", with_value("agent.noise_sigma_final", 0.01),
     ["agent.noise_anneal_steps: must be > 0"]),
    ("averaged policy with hard target copies", with_value("agent.policy_weights", "averaged",
                                                           with_value("agent.target_update", 100)),
     ["agent.policy_weights: averaged needs soft target updates (agent.target_update < 1, not 100"]),
    ("unknown policy weights", with_value("agent.policy_weights", "mean"),
     ["agent.policy_weights", "'mean'", "online", "averaged"]),
    ("top level a list", [1, 2], ["preset.yaml: the top level must be a mapping", "a list"]),
    ("top level a string", "env", ["the top level must be a mapping", "the string 'env'"]),
    ("name not a string", PENDULUM | {"name": 5}, ["name: expected a string"]),
    ("name with a slash", PENDULUM | {"name": "../elsewhere"}, ["name: '../elsewhere' must be a plain folder name"]),
    # Training computes in float32: a setting that becomes 0 or inf there would silently stop learning.
    ("learning rate beyond float32", with_value("agent.actor_lr", 1e39),
     ["agent.actor_lr: 1e+39 is beyond float32's range"]),
    ("Huber delta that is 0 in float32", with_value("agent.delta_clip", 1e-50),
     ["agent.delta_clip: 1e-50 is too small for float32 (below 1.2e-38)", "it would act as 0"]),
    ("reward scale that is 0 in float32", with_value("agent.reward_scale", 1e-40),
     ["agent.reward_scale: 1e-40 is too small"]),
    ("NaN for an optional number", with_value("agent.clipnorm", math.nan),
     ["agent.clipnorm: nan is not a finite number"]),
    ("inf for an optional number", with_value("agent.delta_clip", math.inf),
     ["agent.delta_clip: inf is not a finite number"]),
    ("hard copy period beyond the step counter", with_value("agent.target_update", 1e20),
     ["agent.target_update: 1e+20 is too large: a hard copy every that many gradient steps would never happen"]),
    ("OU noise that grows without bound", with_value("agent.ou_theta", 2.0),
     ["agent.ou_theta: 2.0 must be in (0, 2): from 2 on the noise grows without bound"]),
]


@pytest.mark.parametrize(("data", "fragments"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_invalid_preset_is_one_line_naming_file_and_key(data, fragments):
    message = config_error(data)
    assert message.startswith("preset.yaml: ")
    for fragment in fragments:
        assert fragment in message


def test_control_characters_in_a_key_cannot_break_the_line():
    message = config_error(PENDULUM | {"agent": {"gam\nma\x1b[31m": 1}})
    assert "gam\\nma\\x1b[31m" in message


def test_a_huge_value_is_cut_in_the_message_not_the_check():
    message = config_error(with_value("network.actor_layers", [0] * 100_000))
    assert "characters cut" in message and len(message) < 2100


def test_anchor_loop_in_env_kwargs_is_refused():
    loop: list = []
    loop.append(loop)
    message = config_error(with_value("env.kwargs", {"x": loop}, {"env": {"id": "Pendulum-v1"}}))
    assert "env.kwargs: holds a structure that contains itself" in message


def test_anchors_expanding_to_billions_of_values_are_refused_at_once(tmp_path):
    """Ten aliases of ten aliases of ... (the "billion laughs"): 10**9 values from nine short YAML lines. Walking
    them took minutes and gigabytes; the walk now stops at a budget."""
    lines = ["env:", "  id: Pendulum-v1", "  kwargs:", "    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"    {name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    preset = tmp_path / "laughs.yaml"
    preset.write_text("\n".join(lines) + "\n")
    started = time.process_time()  # this process's CPU time: the other test process's load does not count
    with pytest.raises(ConfigError, match=r"laughs\.yaml: env\.kwargs: holds more than 1,000,000 values"):
        load_config(str(preset))
    assert time.process_time() - started < 5


def test_shared_but_not_looping_structures_are_fine():
    shared = [1, 2]
    config = config_from_dict(with_value("env.kwargs", {"a": shared, "b": [shared, shared]}, {"env": {"id": "X"}}))
    assert config.env.kwargs["b"] == [[1, 2], [1, 2]]


def test_deeply_nested_env_kwargs_are_refused():
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    message = config_error(with_value("env.kwargs", {"x": deep}, {"env": {"id": "Pendulum-v1"}}))
    assert "env.kwargs: nested more than" in message


# ------------------------------------------------------------------------------- checks against the env


def pendulum(**sections: dict) -> Config:
    data = copy.deepcopy(PENDULUM)
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return config_from_dict(data)


def test_bounds_inside_the_action_space_resolve():
    config, spec = resolve_bounds(pendulum(action_bounds={"low": [-1.0], "high": [1.5]}))
    assert config.action_bounds.low == [-1.0]
    assert spec.action_dim == 1 and spec.observation_dim == 3
    np.testing.assert_array_equal(spec.low, [-1.0])
    np.testing.assert_array_equal(spec.high, [1.5])


def test_bounds_left_out_are_taken_from_the_env():
    config, spec = resolve_bounds(config_from_dict({"env": {"id": "Pendulum-v1"}}))
    assert config.action_bounds.low == [-2.0] and config.action_bounds.high == [2.0]
    np.testing.assert_array_equal(spec.high, [2.0])


@pytest.mark.parametrize(("low", "high"), [([-3.0], [2.0]), ([-2.0], [2.5]), ([-2.5], [2.5])])
def test_bounds_beyond_the_action_space_are_refused(low, high):
    config = pendulum(action_bounds={"low": low, "high": high})
    env = make_env(config)
    try:
        with pytest.raises(ConfigError, match=r"^action_bounds: dimension 0: .* lies outside the action space "
                                              r"\[-2\.0, 2\.0\] of Pendulum-v1$"):
            env_spec(config, env)
    finally:
        env.close()


def test_bounds_of_the_wrong_length_for_the_env_are_refused():
    config = pendulum(action_bounds={"low": [-1.0, -1.0], "high": [1.0, 1.0]})
    env = make_env(config)
    try:
        with pytest.raises(ConfigError, match="action_bounds: 2 entries but Pendulum-v1 has 1 action dimensions"):
            env_spec(config, env)
    finally:
        env.close()


def fake_env(low: float, high: float) -> types.SimpleNamespace:
    box = gym.spaces.Box(low=np.float32(low), high=np.float32(high), shape=(1,), dtype=np.float32)
    return types.SimpleNamespace(action_space=box, observation_space=gym.spaces.Box(-1, 1, (2,), np.float32))


def test_bounds_equal_to_a_float32_space_are_inside_it():
    # float32(0.7) < 0.7: a preset repeating the space's own bounds must not be called outside them.
    config = config_from_dict({"env": {"id": "Fake-v0"}, "action_bounds": {"low": [-0.7], "high": [0.7]}})
    spec = env_spec(config, fake_env(-0.7, 0.7))
    assert spec.high[0] == np.float32(0.7)
    with pytest.raises(ConfigError, match="lies outside"):
        env_spec(config_from_dict({"env": {"id": "Fake-v0"}, "action_bounds": {"low": [-0.7], "high": [0.71]}}),
                 fake_env(-0.7, 0.7))


def test_a_range_too_narrow_for_inverted_gradients_is_refused_only_for_them():
    """The inverted gradient scales by 1 / width: a width of 2e-25 turned the weights NaN at the first actor step.
    Refused where training meets the environment, not when a config is read (an older checkpoint trained with
    such a range still evaluates and exports)."""
    hint = r"\(gymnasium\.wrappers\.RescaleAction\), or set agent\.bounding tanh or clip$"
    with pytest.raises(ConfigError, match=r"^action_bounds: dimension 0 of Fake-v0's action space: the width high - "
                                          r"low = 2e-25 is too narrow for agent\.bounding invert .*" + hint):
        env_spec(config_from_dict({"env": {"id": "Fake-v0"}}), fake_env(-1e-25, 1e-25))
    narrow = {"env": {"id": "Fake-v0"}, "action_bounds": {"low": [-1e-25], "high": [1e-25]}}
    with pytest.raises(ConfigError, match=r"^action_bounds: dimension 0 of action_bounds: the width high - low = "
                                          r"2e-25 is too narrow"):
        env_spec(config_from_dict(narrow), fake_env(-2.0, 2.0))
    for bounding in ("tanh", "clip"):  # nothing divides by the width there
        config = config_from_dict({**narrow, "agent": {"bounding": bounding}})
        assert env_spec(config, fake_env(-1e-25, 1e-25)).high[0] == np.float32(1e-25)
    assert env_spec(config_from_dict({"env": {"id": "Fake-v0"}}), fake_env(-1e-15, 1e-15)).high[0] > 0


def test_unbounded_action_space_needs_bounds():
    env = types.SimpleNamespace(action_space=gym.spaces.Box(-np.inf, np.inf, (1,), np.float32),
                                observation_space=gym.spaces.Box(-1, 1, (2,), np.float32))
    with pytest.raises(ConfigError, match=r"has unbounded actions; give action_bounds\.low and high"):
        env_spec(config_from_dict({"env": {"id": "Fake-v0"}}), env)


@pytest.mark.parametrize(("env_id", "pattern"), [
    ("NoSuchEnv-v0", r"^env\.id: unknown environment 'NoSuchEnv-v0'$"),
    ("Pendulum-v99", r"^env\.id: 'Pendulum-v99': .*v99"),
    ("CartPole-v1", r"^env\.id: CartPole-v1 has action space Discrete\(2\); rdpg needs continuous"),
])
def test_unusable_environment_ids_are_config_errors(env_id, pattern):
    with pytest.raises(ConfigError, match=pattern):
        make_env(config_from_dict({"env": {"id": env_id}}))


def test_env_kwargs_the_env_rejects():
    with pytest.raises(ConfigError, match=r"env\.kwargs: Pendulum-v1 rejects them"):
        make_env(pendulum(env={"kwargs": {"gravity_typo": 9.8}}))


def test_env_kwargs_the_env_fails_on_when_run_are_found_before_training():
    with pytest.raises(ConfigError,
                       match=r"env\.kwargs: Pendulum-v1 fails with \{'g': 'abc'\}: the environment raised TypeError"):
        resolve_bounds(pendulum(env={"kwargs": {"g": "abc"}}))


def test_observation_indices_must_fit():
    with pytest.raises(ConfigError, match=r"env\.observation_indices: \[3\] does not fit the 3 observation"):
        make_env(pendulum(env={"observation_indices": [3]}))
    env = make_env(pendulum(env={"observation_indices": [0, 2]}))
    assert env.observation_space.shape == (2,)
    env.close()


# ------------------------------------------------------------------------------------- files and YAML


def load_error(preset: str | Path, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(str(preset), overrides)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_unknown_preset_name_lists_the_shipped_ones():
    message = load_error("pendullum")
    assert message.startswith("unknown preset 'pendullum' (did you mean 'pendulum'?); shipped presets: ")
    for name in shipped_presets():
        assert name in message


def test_missing_preset_file(tmp_path):
    assert load_error(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: preset file not found"
    assert load_error(tmp_path / "sub" / "x") == f"{tmp_path / 'sub' / 'x'}: preset file not found"


def test_preset_path_through_a_file(tmp_path):
    write(tmp_path, "x", "plain")
    assert "preset file not found" in load_error(tmp_path / "plain" / "p.yaml")


def test_preset_that_is_a_folder(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    assert load_error(tmp_path / "dir.yaml") == f"{tmp_path / 'dir.yaml'}: is a folder, not a preset file"


def test_preset_that_is_a_device_is_not_read():
    assert load_error("/dev/zero") == "/dev/zero: not a regular file (a device or pipe cannot be a preset)"


def test_preset_name_too_long_for_the_file_system():
    message = load_error("a" * 5000 + ".yaml")
    assert "cannot read the preset file: File name too long" in message


def test_preset_name_with_a_nul_byte():
    assert "not a valid file name" in load_error("bad\x00name.yaml")


@pytest.mark.skipif(hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_unreadable_preset(tmp_path):
    path = write(tmp_path, "env: {id: Pendulum-v1}\n")
    path.chmod(0)
    assert load_error(path) == f"{path}: cannot read the file: Permission denied"


def test_preset_that_is_not_text(tmp_path):
    path = write(tmp_path, b"env:\n  id: \xff\xfe\n")
    assert load_error(path) == f"{path}: not UTF-8 text (byte 11 on line 2)"


def test_preset_too_large(tmp_path):
    path = write(tmp_path, "# " + "x" * (cfg.MAX_PRESET_BYTES + 10) + "\n")
    assert load_error(path) == f"{path}: larger than 1024 KiB; not a preset"


@pytest.mark.parametrize("text", ["", "   \n\n", "\t\n"])
def test_empty_preset(tmp_path, text):
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}: the file is empty"


def test_yaml_comments_only_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "# nothing here\n")
    assert load_error(path) == f"{path}: the top level must be a mapping of sections, got null"


@pytest.mark.parametrize(("text", "where"), [
    ("env:\n  id: Pendulum-v1\n agent: [\n", "at line 3, column 2"),
    ("env: {id: Pendulum-v1\nagent: {}\n", "at line 2"),
    ("env:\n\tid: Pendulum-v1\n", "at line 2, column 1"),
    ("env:\n  id: 'Pendulum-v1\n", "at line 3"),
    ("env:\n  id: Pendulum-v1\n---\nenv: {}\n", "at line 3"),
])
def test_yaml_syntax_errors_give_the_line(tmp_path, text, where):
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: YAML does not parse {where}")


@pytest.mark.parametrize(("text", "fragment"), [
    ("env:\n  id: Pendulum-v1\nname: 2001-13-45\n", "at line 3, column 7: cannot read '2001-13-45' as timestamp"),
    ("env:\n  id: !!float abc\n", "at line 2, column 7: cannot read 'abc' as float"),
    ("env:\n  id: !!int abc\n", "at line 2, column 7: cannot read 'abc' as int"),
    ("env:\n  id: Pendulum-v1\n  id: CartPole-v1\n", "at line 3, column 3: key 'id' given twice (first at line 2)"),
    ("env:\n  id: Pendulum-v1\nagent: {gamma: 0.9}\nagent: {gamma: 0.8}\n", "key 'agent' given twice"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "YAML does not parse: nested too deeply"),
])
def test_yaml_that_parses_but_cannot_be_built(tmp_path, text, fragment):
    path = write(tmp_path, text)
    assert fragment in load_error(path)


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = write(tmp_path, "env: {id: Pendulum-v1}\nbase: &b {gamma: 0.9, batch_size: 32}\n")
    assert "base: unknown section" in load_error(path)
    path = write(tmp_path, "env: {id: Pendulum-v1}\nagent:\n  <<: {gamma: 0.9, batch_size: 32}\n  gamma: 0.8\n")
    config = load_config(str(path))
    assert (config.agent.gamma, config.agent.batch_size) == (0.8, 32)


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system",
    "!!python/object/new:os.system",
    "!!python/name:os.system",
    "!!python/object:pathlib.Path",
])
def test_python_tags_are_refused_and_never_run(tmp_path, tag):
    marker = tmp_path / "ran"
    path = write(tmp_path, f"env:\n  id: {tag} ['touch {marker}']\n")
    message = load_error(path)
    assert message.startswith(f"{path}: YAML does not parse at line 2, column 7: could not determine a constructor")
    assert not marker.exists()


def test_top_level_not_a_mapping(tmp_path):
    path = write(tmp_path, "- env\n- agent\n")
    assert load_error(path) == f"{path}: the top level must be a mapping of sections, got a list"


def test_yaml_exponent_without_a_dot_is_text_and_the_message_says_so(tmp_path):
    path = write(tmp_path, "env: {id: Pendulum-v1}\nagent:\n  actor_lr: 1e-3\n")
    message = load_error(path)
    assert message == (f"{path}: agent.actor_lr: expected a number, got the string '1e-3' "
                       "(write it as e.g. 1.0e-03: YAML reads '1e-3' as text)")


def test_yaml_nan_and_inf_are_refused(tmp_path):
    path = write(tmp_path, "env: {id: Pendulum-v1}\nagent:\n  gamma: .nan\n")
    assert load_error(path) == f"{path}: agent.gamma: nan is not a finite number"
    path = write(tmp_path, "env: {id: Pendulum-v1}\naction_bounds: {low: [-.inf], high: [2.0]}\n")
    assert load_error(path) == f"{path}: action_bounds.low: [-inf] holds a non-finite number"


def test_read_yaml_returns_plain_data(tmp_path):
    path = write(tmp_path, "a: [1, 2.5, true, null, x]\n")
    assert read_yaml(path) == {"a": [1, 2.5, True, None, "x"]}


# ---------------------------------------------------------------------------------------------- --set


@pytest.mark.parametrize(("text", "expected"), [
    ("agent.gamma=0.9", ("agent.gamma", 0.9)),
    ("agent.actor_lr=1e-3", ("agent.actor_lr", 1.0e-3)),  # a number on the command line, whatever YAML 1.1 says
    ("agent.batch_size=64", ("agent.batch_size", 64)),
    ("network.actor_layers=[16, 16]", ("network.actor_layers", [16, 16])),
    ("agent.twin_critics=true", ("agent.twin_critics", True)),
    ("agent.clipnorm=", ("agent.clipnorm", None)),
    ("agent.clipnorm=null", ("agent.clipnorm", None)),
    (" env.id = Pendulum-v1", ("env.id", "Pendulum-v1")),
    ("env.kwargs={g: 9.8}", ("env.kwargs", {"g": 9.8})),
    ("description=a = b", ("description", "a = b")),
    ("agent.noise=ou", ("agent.noise", "ou")),
    ("action_bounds.low=[-1e-3, 2e1]", ("action_bounds.low", [-1.0e-3, 20.0])),  # in a list too
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("agent.gamma", "--set agent.gamma: expected section.key=value"),
    ("agent.gama=0.9", "--set agent.gama=0.9: unknown key 'agent.gama' (did you mean 'agent.gamma'?)"),
    ("gamma=0.9", "--set gamma=0.9: unknown key 'gamma'"),
    ("env.kwarg.g=3", "--set env.kwarg.g=3: unknown key 'env.kwarg.g' (did you mean 'env.kwargs'?)"),
    ("agent.batch_size=[1", "--set agent.batch_size=[1: the value does not parse as YAML"),
    ("agent.gamma=!!python/object/apply:os.system [ls]",
     "--set agent.gamma=!!python/object/apply:os.system [ls]: the value does not parse as YAML: could not "
     "determine a constructor"),
    ("agent.gamma={a: 1, a: 2}", "--set agent.gamma={a: 1, a: 2}: the value does not parse as YAML: key 'a' "
                                 "given twice"),
    # A whole section: not an unknown key with a guess at one of its keys.
    ("agent={gamma: 0.9}", "--set agent={gamma: 0.9}: 'agent' is a section; set its keys one by one, as "
                           "agent.KEY=VALUE"),
    ("env=5", "--set env=5: 'env' is a section"),
    # A number parsing turned into 0 or infinity is named as typed, not as the 0.0 or inf it became.
    ("agent.gamma=1e-400", "--set agent.gamma: 1e-400 is too small for float32 (below 1.2e-38)"),
    ("agent.actor_lr=1.0E-400", "--set agent.actor_lr: 1.0E-400 is too small for float32"),
    ("network.actor_layers=[16, 1e-400]", "--set network.actor_layers: 1e-400 is too small for float32"),
    ("agent.actor_lr=-1e400", "--set agent.actor_lr: -1e400 is beyond float32's range"),
    ("agent.actor_lr=1e-4_00", "--set agent.actor_lr: 1e-4_00 is too small for float32"),
    # An environment's keyword is a float64: what float32 cannot hold (1e-320) is no loss there.
    ("env.kwargs.x=1e-400", "--set env.kwargs.x: 1e-400 is beyond a float's range: it parses as 0.0"),
])
def test_parse_override_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(("text", "expected"), [
    ("agent.actor_lr=0e-400", ("agent.actor_lr", 0.0)),  # a zero typed as one is no loss
    ("agent.actor_lr=0", ("agent.actor_lr", 0)),
    ("env.id=my_envs:Task1e-400", ("env.id", "my_envs:Task1e-400")),  # not a number: a name
    ("env.kwargs.x=[0.0, 2e-400x]", ("env.kwargs.x", [0.0, "2e-400x"])),  # a string beside a zero
    ("env.kwargs.x=0.0 # 1e-400", ("env.kwargs.x", 0.0)),  # a comment
    ("env.kwargs.x=1e-320", ("env.kwargs.x", 1e-320)),
])
def test_a_zero_typed_as_zero_is_not_a_lost_number(text, expected):
    assert parse_override(text) == expected


def test_apply_overrides_sets_creates_and_leaves_the_input_alone():
    data = {"env": {"id": "Pendulum-v1"}, "agent": {"gamma": 0.9}}
    out = apply_overrides(data, {"agent.gamma": 0.5, "replay.size": 10, "name": "n"})
    assert out == {"env": {"id": "Pendulum-v1"}, "agent": {"gamma": 0.5}, "replay": {"size": 10}, "name": "n"}
    assert data == {"env": {"id": "Pendulum-v1"}, "agent": {"gamma": 0.9}}


def test_apply_overrides_into_a_section_that_is_not_a_mapping():
    with pytest.raises(ConfigError, match=r"--set agent\.gamma: section 'agent' is not a mapping in the preset"):
        apply_overrides({"agent": 5}, {"agent.gamma": 0.5})


def test_load_config_applies_overrides():
    config = load_config("pendulum", dict(map(parse_override, [
        "agent.gamma=0.5", "network.actor_layers=[16]", "train.steps=300", "agent.actor_lr=1e-4"])))
    assert config.agent.gamma == 0.5
    assert config.network.actor_layers == [16]
    assert config.train.steps == 300
    assert config.agent.actor_lr == 1.0e-4
    assert config.name == "pendulum"
    assert config.agent.batch_size == load_config("pendulum").agent.batch_size


def test_a_bad_override_is_reported_as_the_override_not_as_the_file():
    assert load_error("pendulum", {"agent.gamma": 0}) == "--set agent.gamma: 0 must be in (0, 1]"
    assert load_error("pendulum", {"agent.batch_size": "abc"}) == (
        "--set agent.batch_size: expected an integer, got the string 'abc'")


def test_a_cross_check_names_the_file_and_the_override():
    message = load_error("pendulum", {"action_bounds.low": [-1.0, -1.0], "train.steps": 5})
    path = resolve_preset_path("pendulum")
    assert message == (f"{path} with --set action_bounds.low: action_bounds: low has 2 entries and high 1; they "
                       "need one each per action dimension")


def test_a_replay_smaller_than_a_batch_names_both_keys_and_values():
    """The agent waits for a batch's worth of transitions before it learns: a smaller replay never has one."""
    path = resolve_preset_path("pendulum")
    assert load_error("pendulum", {"replay.size": 100}) == (
        f"{path} with --set replay.size: replay.size: 100 is smaller than agent.batch_size 256; "
        "the agent would never learn")
    assert load_error("pendulum", {"agent.batch_size": 2_000_000}) == (
        f"{path} with --set agent.batch_size: replay.size: 1000000 is smaller than agent.batch_size 2000000; "
        "the agent would never learn")


def test_a_replay_of_exactly_one_batch_is_accepted_also_for_sequences():
    """Windows are drawn with replacement from the stored transitions, so a recurrent agent needs no more
    than a batch's worth of them (and room for one window), however long its windows are."""
    assert config_from_dict(with_value("replay.size", 32, with_value("agent.batch_size", 32))).replay.size == 32
    recurrent = copy.deepcopy(PENDULUM) | {"agent": {"batch_size": 8}, "network": {"recurrent": "lstm"},
                                           "replay": {"size": 12, "sequence_length": 8, "burn_in": 4}}
    config = config_from_dict(recurrent)
    assert (config.replay.size, config.agent.batch_size) == (12, 8)


def test_a_bad_list_entry_given_with_set_is_named():
    assert load_error("pendulum", dict([parse_override("network.actor_layers=[a]")])) == (
        "--set network.actor_layers: expected a list of integers, got the string 'a' in ['a']")
    assert load_error("pendulum", dict([parse_override("network.actor_layers=[16, 'x32']")])) == (
        "--set network.actor_layers: expected a list of integers, got the string 'x32' in [16, 'x32']")
    # Not a list at all: the whole value is what is wrong.
    assert load_error("pendulum", dict([parse_override("network.actor_layers=a")])) == (
        "--set network.actor_layers: expected a list of integers, got the string 'a'")


def test_a_number_written_as_text_in_a_list_gets_the_hint(tmp_path):
    path = write(tmp_path, "env: {id: Pendulum-v1}\naction_bounds: {low: [-2.0], high: [2e0]}\n")
    assert load_error(path) == (f"{path}: action_bounds.high: expected a list of numbers or null, got the string "
                                "'2e0' in ['2e0'] (write it as e.g. 2.0e+00: YAML reads '2e0' as text)")


def test_an_unknown_key_given_as_an_override_dict_is_still_refused():
    assert "agent.gama: unknown key (did you mean 'agent.gamma'?)" in load_error("pendulum", {"agent.gama": 1})


def test_preset_given_by_path(tmp_path):
    path = write(tmp_path, "env: {id: Pendulum-v1}\nagent: {gamma: 0.9}\n", "mine.yml")
    config = load_config(str(path))
    assert config.agent.gamma == 0.9 and config.name == "mine"
    # a path without a YAML suffix works when the file exists
    (tmp_path / "noext").write_text("env: {id: Pendulum-v1}\n")
    assert load_config(str(tmp_path / "noext")).env.id == "Pendulum-v1"


# ------------------------------------------------------------------------------------- shipped presets


def test_the_issue_2_presets_are_shipped():
    assert {"pendulum", "mountaincar"} <= set(shipped_presets())
    assert load_config("pendulum").env.id == "Pendulum-v1"
    assert load_config("mountaincar").env.id == "MountainCarContinuous-v0"


@pytest.mark.parametrize("name", sorted(shipped_presets()))
def test_shipped_preset_loads_and_fits_its_environment(name):
    config = load_config(name)
    assert config.name == name
    raw = read_yaml(shipped_presets()[name])
    # Every preset states its bounds, batch size and warm-up explicitly (issue 2).
    assert raw["action_bounds"]["low"] and raw["action_bounds"]["high"]
    assert {"batch_size", "warmup_steps"} <= set(raw["agent"])
    assert isinstance(raw.get("description"), str) and raw["description"]
    try:
        resolved, spec = resolve_bounds(config)
    except EnvironmentSetupError as exc:  # a simulator extra (box2d, mujoco) not installed here
        pytest.skip(str(exc))
    assert resolved.action_bounds.low == config.action_bounds.low
    assert spec.action_dim == len(config.action_bounds.low)


def test_sections_match_issue_2():
    assert list(SECTIONS) == ["env", "action_bounds", "agent", "network", "replay", "train"]


def test_set_one_env_kwarg_keeps_the_others(tmp_path):
    preset = tmp_path / "kw.yaml"
    preset.write_text("env:\n  id: Pendulum-v1\n  kwargs: {g: 9.0, max_speed: 7.0}\n")
    overrides = dict([parse_override("env.kwargs.g=5.0"), parse_override("env.kwargs.max_torque=1.5")])
    assert load_config(str(preset), overrides).env.kwargs == {"g": 5.0, "max_speed": 7.0, "max_torque": 1.5}
    # The mapping as a whole is still replaced by --set env.kwargs=...
    whole = dict([parse_override("env.kwargs={g: 5.0}")])
    assert load_config(str(preset), whole).env.kwargs == {"g": 5.0}


def test_set_env_kwarg_needs_a_keyword_name():
    with pytest.raises(ConfigError, match=r"^--set env\.kwargs\.1x=3: '1x' is not a keyword argument name$"):
        parse_override("env.kwargs.1x=3")


def test_env_kwargs_left_empty_are_none(tmp_path):
    """`kwargs:` with every entry commented out is YAML null: no keyword arguments, as an empty section is its
    defaults (it was refused as "expected a mapping, got null")."""
    preset = tmp_path / "p.yaml"
    preset.write_text("env:\n  id: Pendulum-v1\n  kwargs:\n    # g: 9.0\n")
    assert load_config(str(preset)).env.kwargs == {}


def test_a_stored_config_with_a_large_seed_still_loads():
    """Seeds of 2**32 and above are refused from presets and --set (numpy's SeedSequence repeats seed 0's
    episodes for them), but a checkpoint of an earlier version that used one must still evaluate."""
    assert config_from_dict(with_value("train.seed", 2**32 + 5)).train.seed == 2**32 + 5


def test_a_seed_of_2_to_the_32_is_refused_from_a_preset(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("env: {id: Pendulum-v1}\ntrain: {eval_seed: 4294967296}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: train\.eval_seed: 4294967296 must be in \[0, 2\*\*32\)$"):
        load_config(str(preset))
    with pytest.raises(ConfigError, match=r"^--set train\.seed: 4294967296 must be in \[0, 2\*\*32\)$"):
        load_config(str(preset), dict([parse_override("train.seed=4294967296"),
                                       parse_override("train.eval_seed=0")]))


def test_a_bad_value_in_one_env_kwarg_names_the_set():
    with pytest.raises(ConfigError, match=r"pendulum\.yaml with --set env\.kwargs\.g: env\.kwargs: holds the "
                                          r"non-finite number nan"):
        load_config("pendulum", dict([parse_override("env.kwargs.g=.nan")]))


@pytest.mark.parametrize(("text", "suggestion"), [
    ("agent.actor_layers=[8]", "network.actor_layers"),  # spelling distance alone offered agent.actor_lr
    ("network.batch_size=8", "agent.batch_size"),
    ("agent.gama=0.9", "agent.gamma"),
])
def test_an_unknown_key_suggests_the_key_in_its_right_section(text, suggestion):
    with pytest.raises(ConfigError, match=rf"\(did you mean '{re.escape(suggestion)}'\?\)$"):
        parse_override(text)


@pytest.mark.parametrize(("sets", "notes"), [
    ({}, []),
    ({"agent.noise": "gaussian", "agent.ou_theta": 0.3},
     ["agent.ou_theta: 0.3 does nothing with agent.noise gaussian (it is the Ornstein-Uhlenbeck noise's)"]),
    ({"agent.noise": "ou", "agent.ou_theta": 0.3}, []),
    ({"agent.noise": "none", "agent.noise_sigma": 0.3, "agent.noise_sigma_final": 0.1,
      "agent.noise_anneal_steps": 100},
     ["agent.noise_sigma: 0.3 does nothing with agent.noise none",
      "agent.noise_sigma_final: 0.1 does nothing with agent.noise none",
      "agent.noise_anneal_steps: 100 does nothing with agent.noise none"]),
    ({"agent.noise_anneal_steps": 100},
     ["agent.noise_anneal_steps: 100 does nothing without agent.noise_sigma_final (the scale to anneal to)"]),
    ({"agent.target_noise_clip": 0.2}, ["agent.target_noise_clip: 0.2 does nothing while agent.target_noise is 0"]),
    ({"agent.target_noise": 0.2, "agent.target_noise_clip": 0.0},
     ["agent.target_noise_clip: 0 clips the smoothing noise to nothing: agent.target_noise 0.2 does nothing"]),
    ({"network.units": 32}, ["network.units: 32 does nothing with network.recurrent none"]),
    ({"network.units": 32, "network.recurrent": "gru", "replay.burn_in": 4}, []),
    ({"train.steps": 999},
     ["train.steps: 999 ends within the warm-up: every action is random (agent.warmup_steps 1000), the critic "
      "never learns (agent.warmup_critic 1000), the actor never learns (agent.warmup_actor 1000)"]),
    # Env steps 0-999 act at random; after env step 1000 the critic and actor take their first step.
    ({"train.steps": 1000}, ["train.steps: 1000 ends within the warm-up: every action is random "
                             "(agent.warmup_steps 1000)"]),
    ({"train.steps": 1001}, []),
    ({"agent.warmup_actor": 200},
     ["agent.warmup_actor: 200 < agent.warmup_critic 1000: the actor starts learning with the critic, at env step "
      "1000"]),
    # YAML 1.1 reads 0x10 as 16: a learning rate no one means.
    (dict([parse_override("agent.critic_lr=0x10")]),
     ["agent.critic_lr: 16 is a learning rate of 1 or more: Adam moves each weight by about that much at every "
      "step, and training diverges (the presets use 1e-3)"]),
    ({"agent.actor_lr": 1.0}, ["agent.actor_lr: 1 is a learning rate of 1 or more: Adam moves each weight by about "
                               "that much at every step, and training diverges (the presets use 1e-3)"]),
    ({"agent.actor_lr": 0.5, "agent.critic_lr": 0.999}, []),
    ({"train.steps": 3000, "agent.warmup_actor": 5000},
     ["train.steps: 3000 ends within the warm-up: the actor never learns (agent.warmup_actor 5000)"]),
    # Gradient steps after env steps 1000 .. 10000 (warmup_critic 1000, a batch of 256 by then), two each: 18002.
    ({"agent.train_interval": 10001},
     ["agent.train_interval: 10001: no gradient step falls within train.steps 10000 (learning starts at env step "
      "1000, once past warmup_critic with a batch in the replay): nothing learns"]),
    ({"agent.train_interval": 10000}, []),  # one gradient step, after env step 10000
    ({"agent.warmup_critic": 0, "agent.warmup_actor": 0, "agent.batch_size": 8, "train.steps": 7,
      "agent.warmup_steps": 0, "replay.size": 100},
     ["agent.train_interval: 1: no gradient step falls within train.steps 7 (learning starts at env step 8, once "
      "past warmup_critic with a batch in the replay): nothing learns"]),
    ({"agent.target_update": 18003, "agent.policy_weights": "online"},
     ["agent.target_update: a hard copy every 18003 gradient steps never comes in this run's 18002: the target "
      "networks keep their initial weights"]),
    ({"agent.target_update": 18002, "agent.policy_weights": "online"}, []),
    ({"agent.policy_delay": 18003},
     ["agent.policy_delay: 18003 is more than this run's 18002 gradient steps: the actor and the target networks "
      "move at most once, at the first"]),
    ({"env.observation_indices": [0, 2, 0]},
     ["env.observation_indices: 0 listed more than once (the component is fed in as many times)"]),
    # A budget within the warm-up ended the checks: the repeated index after it went unsaid.
    ({"env.observation_indices": [0, 0], "train.steps": 10},
     ["train.steps: 10 ends within the warm-up: every action is random (agent.warmup_steps 1000), the critic never "
      "learns (agent.warmup_critic 1000), the actor never learns (agent.warmup_actor 1000)",
      "env.observation_indices: 0 listed more than once (the component is fed in as many times)"]),
])
def test_settings_that_do_nothing_are_named(sets, notes):
    from rdpg_cli.config import inert_settings

    assert inert_settings(load_config("pendulum", sets)) == notes


def test_a_recurrent_network_trained_on_zero_states_only_is_named():
    from rdpg_cli.config import inert_settings

    note = ("replay.sequence_length: 1 with burn_in 0 trains the recurrent layers on their zero initial state "
            "only: their recurrent weights never learn (give a burn_in or a longer sequence)")
    one_step = {"replay.sequence_length": 1, "replay.burn_in": 0, "network.critic_input": "history"}
    assert inert_settings(load_config("pendulum-novel", one_step)) == [note]
    assert inert_settings(load_config("pendulum-novel", one_step | {"replay.burn_in": 1})) == []
    assert inert_settings(load_config("pendulum-novel", one_step | {"replay.sequence_length": 2})) == []
    # A stored state starts the actor's windows only: the critics still never use their recurrent weights.
    stored = ("replay.sequence_length: 1 with burn_in 0 trains the critics' recurrent layers on their zero initial "
              "state only (replay.store_state starts the actor's windows from its recorded state, not the "
              "critics'): their recurrent weights never learn (give a burn_in or a longer sequence)")
    assert inert_settings(load_config("pendulum-novel", one_step | {"replay.store_state": True})) == [stored]
    # A critic over the whole observation has no recurrent layer: a stored state leaves nothing untrained.
    whole = one_step | {"network.critic_input": "full_observation"}
    assert inert_settings(load_config("pendulum-novel", whole | {"replay.store_state": True})) == []
    assert inert_settings(load_config("pendulum-novel", whole)) == [note.replace(
        "the recurrent layers on their zero initial state only: their", "the actor's recurrent layer on its zero "
        "initial state only: its")]


def test_a_critic_over_the_whole_observation_of_a_fully_observed_feed_forward_agent_is_named():
    from rdpg_cli.config import inert_settings

    whole = {"network.critic_input": "full_observation"}
    assert inert_settings(load_config("pendulum", whole)) == [
        "network.critic_input: full_observation is what history gives with network.recurrent none and no "
        "env.observation_indices (the critic reads the observation either way)"]
    assert inert_settings(load_config("pendulum", whole | {"env.observation_indices": [0, 1]})) == []
    # With the previous action in the history the critic of the history reads more than the observation.
    assert inert_settings(load_config("pendulum", whole | {"network.history": "obs+prev_action"})) == []
    assert inert_settings(load_config("pendulum-novel")) == []  # its critic reads the whole observation


def test_with_one_step_windows_a_stored_state_trains_the_actors_recurrent_weights_not_the_critics():
    """What the note above says, measured: one gradient step on one-step windows from a stored state moves the
    actor's recurrent kernel and leaves the critic's as it was."""
    import numpy as np

    from rdpg_cli.agent import Agent
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.replay import ReplayBuffer

    config, spec = resolve_bounds(load_config("pendulum-novel", {
        "replay.sequence_length": 1, "replay.burn_in": 0, "replay.store_state": True, "network.units": 4,
        "network.actor_layers": [8], "network.critic_layers": [8], "agent.batch_size": 8,
        "network.critic_input": "history"}))
    agent = Agent(config, spec, seed=0, run_eagerly=True)
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(64, 2, 1, state_shapes=(4, 4))
    for _ in range(32):
        state = tuple(rng.normal(size=4).astype(np.float32) for _ in range(2))
        replay.add(rng.normal(size=2), rng.normal(size=1), -1.0, rng.normal(size=2), False, False, state)
    before = {"actor": agent.actor.encoder.recurrent_kernel.numpy(),
              "critic": agent.critics[0].encoder.recurrent_kernel.numpy()}
    agent.train_step(replay.sample(rng, 8, 1, 0), update_actor=True)
    assert not np.array_equal(agent.actor.encoder.recurrent_kernel.numpy(), before["actor"])
    np.testing.assert_array_equal(agent.critics[0].encoder.recurrent_kernel.numpy(), before["critic"])


def test_no_shipped_preset_has_settings_that_do_nothing():
    from rdpg_cli.config import inert_settings, shipped_presets

    for name in shipped_presets():
        assert inert_settings(load_config(name)) == [], name


def test_sequences_without_recurrence_are_refused_for_new_runs_only():
    """A feed-forward update on [B, L] windows is B * L single transitions: refused in a new run's preset; a
    stored config that has it (a run or export made before the check) still loads."""
    with pytest.raises(ConfigError) as info:
        load_config("pendulum", {"replay.sequence_length": 4})
    assert str(info.value).endswith(
        "pendulum.yaml with --set replay.sequence_length: replay.sequence_length: 4 needs network.recurrent lstm or "
        "gru (a feed-forward agent learns from single transitions; agent.batch_size sets how many)")
    stored = config_from_dict(with_value("replay.sequence_length", 4), source="checkpoint.h5 (stored config)")
    assert stored.replay.sequence_length == 4 and not stored.recurrent


def test_a_key_given_by_its_own_option_is_named_as_typed():
    """`--steps N` and `--seed S` are train.steps and train.seed: a bad value names the option the user typed."""
    with pytest.raises(ConfigError) as info:
        load_config("pendulum", {"train.steps": 10**30}, {"train.steps": "--steps"})
    assert str(info.value).startswith("--steps: train.steps: 1000000000000000000000000000000 is too large")
    with pytest.raises(ConfigError) as info:
        load_config("pendulum", {"train.steps": 10**30})
    assert str(info.value).startswith("--set train.steps: 1000000000000000000000000000000 is too large")
    from rdpg_cli.config import key_locator

    locate = key_locator("pendulum", {"train.steps": 50}, {"train.steps": "--steps"})
    assert str(locate(ConfigError("train.steps: 50 ends within the warm-up"))).endswith(
        "pendulum.yaml with --steps: train.steps: 50 ends within the warm-up")
