"""Hypothesis against the config loader: whatever mapping a preset holds, validation either gives a Config or
raises rdpg_cli.errors.ConfigError with a one-line message, never anything else (issue 7)."""

from __future__ import annotations

import dataclasses
import datetime
import math
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdpg_cli.config import SECTIONS, TOP_LEVEL_SCALARS, Config, config_from_dict, load_config, parse_override
from rdpg_cli.errors import ConfigError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELDS = {section: [f.name for f in dataclasses.fields(cls)] for section, cls in SECTIONS.items()}
NAMES = sorted({*SECTIONS, *TOP_LEVEL_SCALARS, *(name for names in FIELDS.values() for name in names)})

# Values near the edges the validator draws: the right types and the wrong ones, zero, negatives, huge
# integers, NaN and inf, YAML-1.1 lookalike strings, the Literal choices, and containers of all of them.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-3, max_value=300),
    st.floats(),  # NaN, inf, -0.0, subnormals
    st.floats(min_value=-3, max_value=3),
    st.text(max_size=12),
    st.sampled_from(["1e-3", "true", "yes", "nan", ".inf", "0x10", "invert", "tanh", "clip", "lstm", "gru",
                     "none", "ou", "gaussian", "obs", "obs+prev_action", "Pendulum-v1", "", "\n", "[x]"]),
    st.binary(max_size=4),
    st.dates(min_value=datetime.date(1900, 1, 1)),
)
keys = st.one_of(st.sampled_from(NAMES), st.text(max_size=8), st.integers(-2, 2), st.booleans(), st.none())
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                        max_leaves=12)


def section_values(section: str) -> st.SearchStrategy:
    """A section mapping using mostly its real keys, with arbitrary values."""
    return st.dictionaries(st.sampled_from(FIELDS[section]) | keys, anything, max_size=6)


presets = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            **{section: section_values(section) | anything for section in SECTIONS},
            "name": anything,
            "description": anything,
        },
    ),
    st.dictionaries(keys, anything, max_size=5),
    anything,
)


def assert_one_line(error: ConfigError) -> None:
    message = str(error)
    assert message.strip(), "empty message"
    assert "\n" not in message and "\r" not in message, message
    assert message == " ".join(message.splitlines()), message


def validate(data: object, source: str) -> Config | None:
    try:
        return config_from_dict(data, source=source)
    except ConfigError as error:
        assert_one_line(error)
        return None


@SETTINGS
@given(presets)
def test_config_from_dict_raises_only_one_line_config_errors(data):
    config = validate(data, "fuzz.yaml")
    if config is not None:
        # A valid config survives the trip through config.yaml that every run and checkpoint makes.
        assert config_from_dict(yaml.safe_load(config.to_yaml()), source="config.yaml") == config
        assert all(math.isfinite(x) for x in (config.action_bounds.low or []) + (config.action_bounds.high or []))


@SETTINGS
@given(st.fixed_dictionaries({"env": st.fixed_dictionaries({"id": st.just("Pendulum-v1")})},
                             optional={section: section_values(section) for section in SECTIONS if section != "env"}))
def test_mostly_valid_presets_raise_only_config_errors(data):
    validate(data, "fuzz.yaml")


@SETTINGS
@given(presets)
def test_load_config_of_a_yaml_file_raises_only_one_line_config_errors(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        try:
            load_config(str(path))
        except ConfigError as error:
            assert_one_line(error)


def load_text_as_preset(text: str) -> None:
    """Write ``text`` as a preset file and load it: only a one-line ConfigError may come out."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(str(path))
        except ConfigError as error:
            assert_one_line(error)


@SETTINGS
@given(st.text(max_size=200))
def test_load_config_of_arbitrary_text_raises_only_one_line_config_errors(text):
    load_text_as_preset(text)


yaml_tokens = st.sampled_from(["env:", "agent:", "  gamma:", "  id:", " ", "\n", "  ", "- ", "[", "]", "{", "}",
                               ",", ":", "&a", "*a", "<<:", "!!python/object/apply:os.system", "!!int", "!!float",
                               "!!timestamp", "2001-13-45", "'", '"', "#", "---", "...", "%YAML 1.1", "? ", "|",
                               ">", ".nan", "1e-3", "Pendulum-v1"])


@SETTINGS
@given(st.lists(yaml_tokens | st.text(max_size=3), max_size=40).map("".join))
def test_load_config_of_yaml_like_text_raises_only_one_line_config_errors(text):
    load_text_as_preset(text)


@SETTINGS
@given(st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from([*NAMES, *(f"{s}.{k}" for s, ks in FIELDS.items() for k in ks)]),
              st.text(max_size=20) | yaml_tokens).map("=".join),
))
def test_parse_override_raises_only_one_line_config_errors(text):
    try:
        parse_override(text)
    except ConfigError as error:
        assert_one_line(error)


@SETTINGS
@given(st.dictionaries(st.sampled_from([f"{s}.{k}" for s, ks in FIELDS.items() for k in ks]), anything,
                       max_size=4))
def test_load_config_with_arbitrary_overrides_raises_only_one_line_config_errors(overrides):
    try:
        config = load_config("pendulum", overrides)
    except ConfigError as error:
        assert_one_line(error)
    else:
        for dotted, value in overrides.items():
            section, key = dotted.split(".")
            got = getattr(getattr(config, section), key)
            assert got == value or (isinstance(value, float) and got == int(value)) \
                or (value is None and got == {})  # a mapping left empty (env.kwargs: null) is an empty one
