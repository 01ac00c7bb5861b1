"""Policy export: SavedModel, TFLite, ONNX and Keras artifacts that run without rdpg, and loading them back.

Every format is written from one functional Keras model made of built-in layers only (so a ``.keras`` file
loads with ``keras.saving.load_model`` in safe mode, without rdpg installed). The model is one policy step:

    inputs   observation [batch, raw obs]  (the preset's observation masking is applied inside)
             state_h, state_c [batch, units]   (LSTM; GRU has state_h only; absent when feed-forward)
             prev_action [batch, act]          (only when network.history is obs+prev_action)
    outputs  action [batch, act], clipped to the bounds, float32, and the next value of every state input

A client starts each episode from the zero state (``initial_state(batch_size)`` in a SavedModel or TFLite
file, whose ``step`` signature is ``serving_default`` under DESIGN §6's name) and feeds each step's state
outputs back as the next step's inputs. The previous action is part of
that state: it is the *clipped* action, as the in-process policy feeds back.

Each artifact carries a metadata JSON (a SavedModel asset ``assets.extra/rdpg_policy.json``, or a sidecar
``<file>.json`` beside a ``.tflite``/``.onnx``/``.keras``) with the bounds, the observation spec, the env id,
the rdpg version and the resolved config, so ``rdpg evaluate ARTIFACT`` rebuilds the environment without
the checkpoint; a sidecar also records its file's size and sha256, checked before any runtime reads the file
(the TFLite interpreter can crash the process on a damaged one). Before an artifact is moved into place
its actions are checked against the checkpoint's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import json
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rdpg_cli import __version__
from rdpg_cli.config import Config, config_from_dict
from rdpg_cli.errors import ConfigError, ExportError, reason
from rdpg_cli.input_files import (blocked_folder_problem, cannot_write_in, file_identity, make_folder, name_problem,
                                  place_new, remove_made_folders, temporary_name)
from rdpg_cli.output import emit
from rdpg_cli.signals import stop_if_a_signal_was_swallowed, stop_signals_deferred
from rdpg_cli.extras import install_hint

FORMATS = ("savedmodel", "tflite", "onnx", "keras")
SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras"}
METADATA_FORMAT = "rdpg-policy"
METADATA_VERSION = 1
METADATA_NAME = "rdpg_policy.json"  # in a SavedModel's assets.extra/
ONNX_OPSET = 17
# The largest action or state difference from the checkpoint's own policy an artifact may show before it is
# refused: the bound for TFLite/ONNX; SavedModel and Keras run the same kernels and land near 1e-7.
PARITY_TOLERANCE = 1.0e-4
ONNX_EXTRA = install_hint("onnx")
# Names the recurrent layer's state takes in the signatures, in the order Keras returns it.
ENCODER_STATE_NAMES = {"none": (), "lstm": ("state_h", "state_c"), "gru": ("state_h",)}
FILE_KINDS = {"tflite": "TFLite", "onnx": "ONNX", "keras": "Keras"}  # as error messages name them
# A TFLite flatbuffer: a 4-byte root offset, then this identifier. An rdpg policy (its tensors, operators
# and two signatures) never fits in fewer bytes than TFLITE_MIN_BYTES.
TFLITE_IDENTIFIER = b"TFL3"
TFLITE_MIN_BYTES = 256


# ---------------------------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class StateSpec:
    """One recurrent-state tensor the client carries: fed as input ``name``, read back from output ``output``
    (the same name, except in ONNX, where tf2onnx cannot give an output an input's name)."""

    name: str
    size: int
    output: str


@dataclass(frozen=True)
class PolicyMetadata:
    """What an exported policy says about itself; stored as JSON with each artifact."""

    artifact: str  # one of FORMATS
    env_id: str
    observation_dim: int  # raw environment observation, before masking
    observation_indices: list[int] | None
    observation_low: list[float | None]  # the env's observation space; None where unbounded
    observation_high: list[float | None]
    action_dim: int
    action_low: list[float]
    action_high: list[float]
    recurrent: str
    history: str
    state: list[StateSpec]
    config_yaml: str
    checkpoint: str
    env_steps: int
    rdpg_version: str = __version__
    format_version: int = METADATA_VERSION
    # A single-file artifact's size and sha256 as exported (and checked), so a file cut short or altered is
    # refused before its runtime reads it; None for a SavedModel and in older sidecars, which still load.
    file_bytes: int | None = None
    file_sha256: str | None = None

    @property
    def input_names(self) -> list[str]:
        return ["observation", *(s.name for s in self.state)]

    def to_json(self) -> str:
        data = {
            "format": METADATA_FORMAT,
            "format_version": self.format_version,
            "rdpg_version": self.rdpg_version,
            "artifact": self.artifact,
            "env_id": self.env_id,
            "observation": {"dim": self.observation_dim, "indices": self.observation_indices,
                            "low": self.observation_low, "high": self.observation_high},
            "action": {"dim": self.action_dim, "low": self.action_low, "high": self.action_high},
            "recurrent": self.recurrent,
            "history": self.history,
            "inputs": self.input_names,
            "outputs": ["action", *(s.output for s in self.state)],
            "state": [{"name": s.name, "size": s.size, "output": s.output} for s in self.state],
            "checkpoint": self.checkpoint,
            "env_steps": self.env_steps,
            "config": self.config_yaml,
        }
        if self.file_bytes is not None:
            data["file"] = {"bytes": self.file_bytes, "sha256": self.file_sha256}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> PolicyMetadata:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExportError(f"{source}: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, dict) or data.get("format") != METADATA_FORMAT:
            raise ExportError(f"{source}: not rdpg policy metadata (no 'format: {METADATA_FORMAT}')")
        version = data.get("format_version")
        if not isinstance(version, int) or version > METADATA_VERSION:
            raise ExportError(f"{source}: metadata format_version {version!r} is newer than this rdpg reads "
                              f"({METADATA_VERSION}); upgrade rdpg")
        try:
            obs, act = data["observation"], data["action"]
            file = data.get("file")  # absent from sidecars written before rdpg recorded it
            meta = cls(
                artifact=str(data["artifact"]),
                env_id=str(data["env_id"]),
                observation_dim=int(obs["dim"]),
                observation_indices=None if obs["indices"] is None else [int(i) for i in obs["indices"]],
                observation_low=list(obs["low"]),
                observation_high=list(obs["high"]),
                action_dim=int(act["dim"]),
                action_low=[float(x) for x in act["low"]],
                action_high=[float(x) for x in act["high"]],
                recurrent=str(data["recurrent"]),
                history=str(data["history"]),
                state=[StateSpec(str(s["name"]), int(s["size"]), str(s["output"])) for s in data["state"]],
                config_yaml=str(data["config"]),
                checkpoint=str(data["checkpoint"]),
                env_steps=int(data["env_steps"]),
                rdpg_version=str(data["rdpg_version"]),
                format_version=version,
                file_bytes=None if file is None else int(file["bytes"]),
                file_sha256=None if file is None else str(file["sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"{source}: damaged metadata ({type(exc).__name__}: {exc})") from None
        # A client reads the action bounds here (the model clips to the stored config's): edited ones are refused.
        low, high = np.asarray(meta.action_low), np.asarray(meta.action_high)
        if not len(low) == len(high) == meta.action_dim:
            raise ExportError(f"{source}: damaged metadata (action bounds of {len(low)} and {len(high)} values for "
                              f"{meta.action_dim} actions)")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
            raise ExportError(f"{source}: damaged metadata (action bounds low {meta.action_low}, high "
                              f"{meta.action_high}: each low must be finite and below its high)")
        return meta

    def config(self, source: str) -> Config:
        """The config to rebuild the environment with. Masking happens inside the artifact, which takes raw
        observations, so the environment built from this config must not mask them a second time."""
        import yaml

        try:
            data = yaml.safe_load(self.config_yaml)
            data["env"]["observation_indices"] = None
            return config_from_dict(data, source=f"{source} (stored config)")
        except ConfigError as exc:
            raise ExportError(str(exc)) from None
        except (yaml.YAMLError, TypeError, KeyError):
            raise ExportError(f"{source}: damaged metadata: the stored config does not parse") from None


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    # JSON has no infinity; unbounded observation components are written as null.
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64)]


# ------------------------------------------------------------------------------------------ the model


def build_policy_model(agent: Any, config: Config, observation_dim: int) -> Any:
    """A functional Keras model of one deterministic policy step, with the actor's weights copied in.

    Built-in layers and ops only, so the ``.keras`` file needs no rdpg code to load. The recurrent layer is
    rebuilt with ``unroll=True`` over a single step: the same cell maths as the training-time layer, but no
    while loop, which is what lets tf2onnx and the TFLite converter take the graph.
    """
    import keras

    actor = agent.policy_actor()
    spec = agent.spec
    net = config.network
    observation = keras.Input((observation_dim,), name="observation", dtype="float32")
    inputs = {"observation": observation}
    outputs: dict[str, Any] = {}
    x = observation
    if config.env.observation_indices is not None:
        x = keras.ops.take(x, list(config.env.observation_indices), axis=1)
    read = x
    if net.history == "obs+prev_action":
        prev_action = keras.Input((spec.action_dim,), name="prev_action", dtype="float32")
        inputs["prev_action"] = prev_action
        x = keras.layers.Concatenate(name="history")([x, prev_action])
    if net.recurrent != "none":
        names = ENCODER_STATE_NAMES[net.recurrent]
        states = [keras.Input((net.units,), name=n, dtype="float32") for n in names]
        inputs.update(zip(names, states, strict=True))
        states = [_batch_of(observation, s) for s in states]
        # rdpg's encoder keeps Keras's weight layout and gate equations (kernel, recurrent_kernel, bias;
        # LSTM gates i, f, c, o; GRU reset_after), so the stock layer given its weights is the same function.
        options = {"return_sequences": False, "return_state": True, "unroll": True, "name": "encoder"}
        if net.recurrent == "lstm":
            step = keras.layers.LSTM(net.units, **options)
        else:
            step = keras.layers.GRU(net.units, reset_after=True, **options)
        result = step(keras.layers.Reshape((1, -1), name="one_step")(x), initial_state=states)
        step.set_weights(actor.encoder.get_weights())
        x = result[0]
        outputs.update(zip(names, result[1:], strict=True))
    for layer in [*actor.hidden, actor.out]:
        copy = layer.__class__.from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    if actor.squash:
        mid = ((spec.high + spec.low) / 2.0).astype(np.float32)
        half_range = ((spec.high - spec.low) / 2.0).astype(np.float32)
        x = keras.layers.Activation("tanh", name="squash")(x)
        x = keras.layers.Rescaling(scale=[float(v) for v in half_range], offset=[float(v) for v in mid],
                                   name="to_bounds")(x)
    # Plain float lists (not numpy arrays) keep the op serializable in the .keras file.
    action = keras.ops.clip(x, [float(v) for v in spec.low], [float(v) for v in spec.high])
    # A NaN or inf in a component the policy reads (a failed sensor) must not come out as a plausible action,
    # and the network alone does not see to that: oneDNN fuses the first layer's matmul, bias and ReLU in a
    # graph and turns NaN into 0 there, and an LSTM's saturating gates absorb an inf. Adding (x - x) of each
    # component read carries either into the action and leaves it exact otherwise. Not 0 * x, which the TFLite
    # converter folds to 0; not a select, which tf2onnx writes as arithmetic where 0 * NaN spoils every row.
    action = action + keras.ops.sum(read - read, axis=-1, keepdims=True)
    outputs = {"action": action, **outputs}
    if "prev_action" in inputs:
        outputs["prev_action"] = action
    return keras.Model(inputs, outputs, name="rdpg_policy")


def _batch_of(observation: Any, state: Any) -> Any:
    """``state``, through an op that fails unless its batch size is the observation's. The recurrent cell's
    arithmetic would broadcast a state of batch 1 over a batch of observations (every row from the one state);
    a concatenation does not broadcast, and built-in ops keep the ``.keras`` file loadable in safe mode. The
    other formats check this in their serving function too (``_batch_checks``), with a plainer message."""
    import keras

    width = int(observation.shape[-1])
    return keras.ops.concatenate([observation, state], axis=-1)[:, width:]


def reference_step(agent: Any, config: Config, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One step of the checkpoint's own policy on a batch, through the agent's Keras actor (mask, history with
    the previous action, actor, clip, as acting does): what every artifact is checked against."""
    import tensorflow as tf

    from rdpg_cli.networks import make_history

    observation = np.asarray(feed["observation"], np.float32)
    if config.env.observation_indices is not None:
        observation = observation[:, config.env.observation_indices]
    batch = observation.shape[0]
    prev_action = feed.get("prev_action", np.zeros((batch, agent.spec.action_dim), np.float32))
    history = make_history(config.network, tf.constant(observation[:, None, :]),
                           tf.constant(np.asarray(prev_action, np.float32)[:, None, :]))
    names = ENCODER_STATE_NAMES[config.network.recurrent]
    state = tuple(tf.constant(feed[n], tf.float32) for n in names)
    raw, next_state = agent.policy_actor()(history, state)
    action = np.clip(raw.numpy()[:, 0, :], agent.spec.low, agent.spec.high).astype(np.float32)
    out = {"action": action, **{n: s.numpy() for n, s in zip(names, next_state, strict=True)}}
    if config.network.history == "obs+prev_action":
        out["prev_action"] = action
    return out


# --------------------------------------------------------------------------------------------- writers


def _signature(meta: PolicyMetadata) -> list[Any]:
    import tensorflow as tf

    specs = [tf.TensorSpec([None, meta.observation_dim], tf.float32, name="observation")]
    specs += [tf.TensorSpec([None, s.size], tf.float32, name=s.name) for s in meta.state]
    return specs


def _serving_fn(model: Any, meta: PolicyMetadata):
    """The function each format serves: ``serve(observation, state_h, ...)``, its arguments named as the
    signature's inputs, so a SavedModel's ``step`` takes them by name too (``**initial_state(n)``)."""
    names = meta.input_names

    def serve(observation, *state):
        batch_checks = _batch_checks(observation, state)
        observation = _width_checked(observation, meta.observation_dim, batch_checks)
        state = _batch_reshaped(observation, state)
        return dict(model(dict(zip(names, (observation, *state), strict=True))))

    serve.__signature__ = inspect.Signature(  # tf.function binds its arguments by this signature
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names])
    return serve


def _batch_checks(observation: Any, state: tuple[Any, ...]) -> list[Any]:
    """Assertions that each state has the observation's batch size: a state of batch 1 beside a batch of
    observations would be broadcast by the recurrent cell's arithmetic (every row from the one state), where a
    client most likely sized its initial_state wrongly. They give the SavedModel a plain message; the
    observation waits for them (``_width_checked``), so no op that would fail on the sizes with a message of
    its own (the model's concatenation with the previous action) runs first."""
    import tensorflow as tf

    batch = tf.shape(observation)[0]
    return [tf.debugging.assert_equal(tf.shape(s)[0], batch, message="a state's batch size must be the observation's")
            for s in state]


def _batch_reshaped(observation: Any, state: tuple[Any, ...]) -> list[Any]:
    """``state``, each reshaped to the observation's batch: the TFLite converter drops assertions, and this
    reshape is the check TFLite and ONNX Runtime keep (they refuse it when the sizes differ). TensorFlow's graph
    optimiser drops it as redundant, which is why the SavedModel relies on ``_batch_checks``."""
    import tensorflow as tf

    batch = tf.shape(observation)[0]
    return [tf.reshape(s, tf.stack([batch, int(s.shape[-1])])) for s in state]


def _width_checked(observation: Any, width: int, other_checks: Sequence[Any] = ()) -> Any:
    """``observation``, refused at run time unless it has ``width`` components, and made to wait for
    ``other_checks``. The signature declares the width, but neither TF nor the TFLite runtime enforces it, and
    the masking gather would take its columns from an observation of any width without a word.

    The assertion gives the SavedModel a plain message. The TFLite converter drops assertions and trusts the
    declared width, so the check it keeps is a broadcast against a ``[1, width]`` row (``maximum`` with -inf,
    the identity), which its kernels, XNNPACK's included, refuse at any other width. Its kernels turn NaN and
    -inf into the lowest finite float there, so non-finite components are passed through as they came."""
    import tensorflow as tf

    check = tf.debugging.assert_equal(tf.shape(observation)[-1], width,
                                      message=f"observation: the policy takes {width} components")
    with tf.control_dependencies([check, *other_checks]):
        widened = tf.maximum(observation, tf.fill([1, width], float("-inf")))
        return tf.where(tf.math.is_finite(observation), widened, observation)


def _write_savedmodel(model: Any, meta: PolicyMetadata, dest: Path) -> None:
    import keras
    import tensorflow as tf

    # Keras's ExportArchive, not tf.saved_model.save on a tf.Module: only the former's SavedModel runs under
    # `saved_model_cli run` (DESIGN §8).
    archive = keras.export.ExportArchive()
    archive.track(model)
    serve, signature = _serving_fn(model, meta), _signature(meta)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    if meta.state:
        # DESIGN §6's names for a recurrent policy: step(observation, state) -> (action, state), the same
        # function as serving_default (which TF Serving and saved_model_cli call by default).
        archive.add_endpoint("step", serve, input_signature=signature)
        sizes = {s.name: s.size for s in meta.state}

        def initial_state(batch_size):
            return {n: tf.zeros(tf.stack([batch_size, size]), tf.float32) for n, size in sizes.items()}

        archive.add_endpoint("initial_state", initial_state,
                             input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")])
    archive.write_out(str(dest), verbose=False)
    # assets.extra/ is the SavedModel's place for files that travel with the model but that the graph does
    # not read (ExportArchive tracks only lookup-table resources, so a tf.saved_model.Asset would be dropped).
    metadata_path(dest, "savedmodel").parent.mkdir(exist_ok=True)
    metadata_path(dest, "savedmodel").write_text(meta.to_json())


def _write_tflite(model: Any, meta: PolicyMetadata, dest: Path) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "savedmodel"
        _write_savedmodel(model, meta, saved)
        keys = ["serving_default", "step", "initial_state"] if meta.state else ["serving_default"]
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=keys)
        # Built-in ops only: a file that needs the Flex delegate would not run in a plain LiteRT interpreter.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            content = converter.convert()
        except Exception as exc:
            raise ExportError(f"the TFLite converter failed: {reason(exc)}") from None
    dest.write_bytes(content)


def _write_onnx(model: Any, meta: PolicyMetadata, dest: Path) -> None:
    import tensorflow as tf

    tf2onnx = _import_tf2onnx()
    serve = _serving_fn(model, meta)
    renamed = {s.name: s.output for s in meta.state}

    def serve_onnx(*args):
        out = serve(*args)
        return {renamed.get(k, k): v for k, v in out.items()}

    signature = _signature(meta)
    function = tf.function(serve_onnx, input_signature=signature)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=ONNX_OPSET)
    except OSError:
        raise  # the file system failed it (a temporary file, a full disk), not the conversion: named as a write
    except Exception as exc:
        kind = f"{meta.recurrent} recurrent" if meta.recurrent != "none" else "feed-forward"
        raise ExportError(f"tf2onnx could not convert this {kind} policy: {reason(exc)}; the savedmodel "
                          "and tflite formats carry the same policy") from None
    _describe_onnx(proto, meta)
    dest.write_bytes(proto.SerializeToString())  # an OSError is named as the keras and tflite writers' are


def _describe_onnx(proto: Any, meta: PolicyMetadata) -> None:
    """Say in the model what its sidecar says: one batch dimension, ``batch``, for every input and output
    (tf2onnx names each its own, ``unk__86``, so the file did not say their sizes must match), and rdpg's
    metadata as the model's ``rdpg_policy`` property (for tools that read an .onnx alone; the sidecar, which
    also records the file's size and sha256, is what rdpg checks)."""
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    entry = proto.metadata_props.add()
    entry.key, entry.value = "rdpg_policy", meta.to_json()


def _write_keras(model: Any, meta: PolicyMetadata, dest: Path) -> None:
    with warnings.catch_warnings():
        # Keras 3.15's saver calls np.array on its own tensors and NumPy 2 warns about the copy keyword.
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(str(dest))


WRITERS = {"savedmodel": _write_savedmodel, "tflite": _write_tflite, "onnx": _write_onnx, "keras": _write_keras}


def _import_tf2onnx() -> Any:
    try:
        import tf2onnx
    except ImportError:
        raise ExportError(f"--format onnx needs tf2onnx and onnxruntime: {ONNX_EXTRA}") from None
    return tf2onnx


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(f"ONNX policies run in onnxruntime, which is not installed: {ONNX_EXTRA}") from None
    return onnxruntime


# --------------------------------------------------------------------------------------------- runners


class Runner(Protocol):
    """An artifact loaded in its own runtime: one batched step, and the zero state."""

    def step(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...
    def initial_state(self, batch_size: int) -> dict[str, np.ndarray]: ...


def _zero_state(meta: PolicyMetadata, batch_size: int) -> dict[str, np.ndarray]:
    return {s.name: np.zeros((batch_size, s.size), np.float32) for s in meta.state}


def _check_input_widths(path: Path, meta: PolicyMetadata, widths: dict[str, Any]) -> None:
    """Refuse an artifact whose inputs (``widths``: name -> last dimension as its runtime declares it, None
    where it leaves it free) are not the ones its metadata gives, as when a SavedModel's assets.extra/ is
    copied from another run: the first step would fail deep inside the runtime, or run the wrong policy."""
    expected = {"observation": meta.observation_dim, **{s.name: s.size for s in meta.state}}
    where = metadata_path(path, meta.artifact)
    if set(widths) != set(expected):
        raise ExportError(f"{path}: its inputs are {', '.join(sorted(widths))}, but its metadata ({where}) "
                          f"gives {', '.join(sorted(expected))}: the metadata belongs to another export")
    for name, size in expected.items():
        width = widths[name]
        if width is not None and int(width) != size:
            raise ExportError(f"{path}: its {name} input has {int(width)} components, but its metadata "
                              f"({where}) says {size}: the metadata belongs to another export")


class SavedModelRunner:
    """Through the SavedModel's signatures: the interface TF Serving and `saved_model_cli` see."""

    def __init__(self, path: Path, meta: PolicyMetadata):
        import tensorflow as tf

        self.meta = meta
        self.loaded = tf.saved_model.load(str(path))
        self.serve = self.loaded.signatures["serving_default"]
        _, specs = self.serve.structured_input_signature
        _check_input_widths(path, meta, {name: spec.shape[-1] for name, spec in specs.items()})

    def step(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        out = self.serve(**{k: tf.constant(v, tf.float32) for k, v in feed.items()})
        return {k: v.numpy() for k, v in out.items()}

    def initial_state(self, batch_size: int) -> dict[str, np.ndarray]:
        if not self.meta.state:
            return {}
        import tensorflow as tf

        out = self.loaded.signatures["initial_state"](batch_size=tf.constant(batch_size, tf.int32))
        return {k: v.numpy() for k, v in out.items()}


@contextmanager
def _native_logs_hidden():
    """Hide what native code writes to fd 2 (TFLite announces its XNNPACK delegate there) when TensorFlow's
    own logging is turned down, as the CLI does unless --verbose."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")
    if not (level.isdigit() and int(level) >= 2):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tflite_interpreter(path: Path) -> Any:
    """The LiteRT interpreter from ai-edge-litert when installed, else TensorFlow's own (deprecated in its
    favour, and noisy about it)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_path=str(path))


class TFLiteRunner:
    def __init__(self, path: Path, meta: PolicyMetadata):
        self.meta = meta
        self.interpreter = tflite_interpreter(path)
        self.serve = self.interpreter.get_signature_runner("serving_default")
        self.zero = self.interpreter.get_signature_runner("initial_state") if meta.state else None
        _check_input_widths(path, meta, {name: detail["shape_signature"][-1]
                                         for name, detail in self.serve.get_input_details().items()})
        # The first call allocates the tensors and applies the XNNPACK delegate, which logs natively.
        with _native_logs_hidden():
            self.step({"observation": np.zeros((1, meta.observation_dim), np.float32), **_zero_state(meta, 1)})

    def step(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # The graph's own check cannot refuse a width of 1, which broadcasts (_width_checked): checked here.
        width = np.shape(feed["observation"])[-1]
        if width != self.meta.observation_dim:
            raise ExportError(f"observation: the policy takes {self.meta.observation_dim} components, not {width}")
        # The runner resizes its inputs to the batch it is given; copies, because the outputs are views of
        # the interpreter's buffers that the next call overwrites.
        return {k: np.array(v) for k, v in self.serve(**feed).items()}

    def initial_state(self, batch_size: int) -> dict[str, np.ndarray]:
        if self.zero is None:
            return {}
        return {k: np.array(v) for k, v in self.zero(batch_size=np.array(batch_size, np.int32)).items()}


class OnnxRunner:
    def __init__(self, path: Path, meta: PolicyMetadata):
        ort = _import_onnxruntime()
        self.meta = meta
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # A dimension ONNX leaves free is a name (the batch), not a number.
        _check_input_widths(path, meta, {i.name: i.shape[-1] if isinstance(i.shape[-1], int) else None
                                         for i in self.session.get_inputs()})
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.state_name = {s.output: s.name for s in meta.state}

    def step(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {k: np.asarray(v, np.float32) for k, v in feed.items()})
        return {self.state_name.get(k, k): v for k, v in zip(self.output_names, values, strict=True)}

    def initial_state(self, batch_size: int) -> dict[str, np.ndarray]:
        return _zero_state(self.meta, batch_size)


class KerasRunner:
    def __init__(self, path: Path, meta: PolicyMetadata):
        import tensorflow as tf

        self.meta = meta
        try:
            self.model = _load_keras_model(path)
        except Exception as exc:
            raise ExportError(f"{path}: keras cannot load it: {reason(exc)}") from None
        _check_input_widths(path, meta, {t.name: t.shape[-1] for t in self.model.inputs})
        # One traced function instead of an eager call per step (about 300 µs against 2 ms, DESIGN §8).
        self.call = tf.function(lambda feed: self.model(feed, training=False), reduce_retracing=True)

    def step(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        out = self.call({k: tf.constant(v, tf.float32) for k, v in feed.items()})
        return {k: v.numpy() for k, v in out.items()}

    def initial_state(self, batch_size: int) -> dict[str, np.ndarray]:
        return _zero_state(self.meta, batch_size)


def _load_keras_model(path: Path) -> Any:
    """Keras loads only a name ending in .keras, in lower case. rdpg writes only that, but reads a file renamed
    to another case (policy.KERAS) too, from a copy under the name Keras wants."""
    import keras

    if path.suffix == ".keras":
        return keras.saving.load_model(str(path), safe_mode=True, compile=False)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "policy.keras"
        shutil.copyfile(path, copy)
        return keras.saving.load_model(str(copy), safe_mode=True, compile=False)


RUNNERS = {"savedmodel": SavedModelRunner, "tflite": TFLiteRunner, "onnx": OnnxRunner, "keras": KerasRunner}


# ---------------------------------------------------------------------------------------------- policy


class ExportedPolicy:
    """An exported artifact as a ``reset()`` / ``act(observation)`` policy for ``evaluate``: the client loop
    any user of the artifact would write (zero state at each episode start, state outputs fed back)."""

    def __init__(self, runner: Runner, meta: PolicyMetadata):
        self.runner = runner
        self.meta = meta
        self.reset()

    def reset(self) -> None:
        self.state = self.runner.initial_state(1)

    def act(self, observation: np.ndarray) -> np.ndarray:
        feed = {"observation": np.asarray(observation, np.float32).reshape(1, -1), **self.state}
        out = self.runner.step(feed)
        self.state = {s.name: out[s.name] for s in self.meta.state}
        return np.asarray(out["action"][0], np.float32)


def artifact_format(path: Path) -> str | None:
    """Which export format a path holds, judged by its shape on disk (None: not an export)."""
    path = Path(path)
    if path.is_dir():
        return "savedmodel" if (path / "saved_model.pb").is_file() else None
    for name, suffix in SUFFIXES.items():
        if path.suffix.lower() == suffix:
            return name
    return None


def metadata_path(path: Path, format_: str) -> Path:
    path = Path(path)
    if format_ == "savedmodel":
        return path / "assets.extra" / METADATA_NAME
    return path.with_name(path.name + ".json")


def read_metadata(path: Path, format_: str) -> PolicyMetadata:
    where = metadata_path(path, format_)
    if not where.is_file():
        raise ExportError(f"{path}: no rdpg metadata at {where}; was it written by rdpg export?")
    try:
        text = where.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{where}: cannot read it ({exc})") from None
    meta = PolicyMetadata.from_json(text, str(where))
    if meta.artifact != format_:
        raise ExportError(f"{where}: describes {_article(meta.artifact)} {meta.artifact} export, but {path} is "
                          f"{_article(format_)} {format_} one")
    return meta


def size_and_sha256(data: bytes) -> tuple[int, str]:
    """-> (size in bytes, sha256 as hex) of a single-file artifact's contents, as its sidecar records them."""
    return len(data), hashlib.sha256(data).hexdigest()


def _tflite_problem(data: bytes) -> str | None:
    """What is wrong with a TFLite file's structure, or None. The interpreter trusts the flatbuffer's offsets
    and can crash the whole process (SIGSEGV) on a file cut short, so the tables are read here first, in
    Python, where a read past the end raises instead."""
    if len(data) < TFLITE_MIN_BYTES:
        return f"{len(data)} bytes, too short for a TFLite policy"
    if data[4:8] != TFLITE_IDENTIFIER:
        return f"no {TFLITE_IDENTIFIER.decode()} identifier at bytes 4..8: not a TFLite model"
    from tensorflow.lite.python import schema_py_generated as schema

    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception:  # struct.error, IndexError, ValueError: an offset or a length points past the end
        return f"{len(data)} bytes, its tables point past the end: cut short?"
    # A model over 2 GB keeps its weight buffers after the flatbuffer, at an offset (0 or 1: inside it).
    if any(b.offset > 1 and b.offset + b.size > len(data) for b in model.buffers or []):
        return f"{len(data)} bytes, a weight buffer lies past the end: cut short?"
    return None


def _keras_problem(data: bytes) -> str | None:
    """What is wrong with a .keras file's structure, or None: it is a zip archive holding config.json.
    Keras itself answers a damaged one with 'File not found', though the file is there."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "config.json" not in archive.namelist():
                return "a zip archive without config.json: not a Keras model"
    except zipfile.BadZipFile:
        return "not a zip archive: cut short?"
    return None


STRUCTURE_CHECKS = {"tflite": _tflite_problem, "keras": _keras_problem}


def check_artifact_file(path: Path, format_: str, meta: PolicyMetadata) -> None:
    """Refuse a single-file artifact that is not the file its export wrote and checked: a size or sha256
    other than the sidecar records (older sidecars record neither), or a structure its runtime would choke
    on. Runs before any runtime opens the file."""
    if format_ not in FILE_KINDS:
        return
    kind = FILE_KINDS[format_]
    try:
        data = path.read_bytes()  # read once: digest and structure come from the same bytes
    except OSError as exc:
        raise ExportError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    size, sha256 = size_and_sha256(data)
    problem = STRUCTURE_CHECKS[format_](data) if format_ in STRUCTURE_CHECKS else None
    if meta.file_bytes is not None and size != meta.file_bytes:
        raise ExportError(f"{path}: damaged {kind} file ({size} bytes, expected {meta.file_bytes}): "
                          "export it again")
    if meta.file_sha256 is not None and sha256 != meta.file_sha256.lower():
        raise ExportError(f"{path}: damaged {kind} file (its sha256 is not the one its export recorded): "
                          "export it again")
    if problem is not None:
        raise ExportError(f"{path}: damaged {kind} file ({problem}): export it again")


def load_exported_policy(path: Path) -> tuple[Config, ExportedPolicy, str]:
    """-> (config to rebuild the environment with, policy, label) for an exported artifact."""
    path = Path(path)
    format_ = artifact_format(path)
    if format_ is None:
        raise ExportError(f"{path}: not an exported policy (a SavedModel folder, .tflite, .onnx or .keras)")
    meta = read_metadata(path, format_)
    config = meta.config(str(path))
    from rdpg_cli.evaluation import check_environment

    check_environment(config, meta.observation_dim, meta.action_dim, str(path))
    check_artifact_file(path, format_, meta)
    try:
        runner = RUNNERS[format_](path, meta)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{path}: cannot load this {format_} policy: {reason(exc)}") from None
    return config, ExportedPolicy(runner, meta), f"{path} ({format_} export of {meta.checkpoint})"


# --------------------------------------------------------------------------------------------- export


@dataclass
class ExportResult:
    path: Path
    format: str
    checkpoint: Path
    metadata: PolicyMetadata
    max_difference: float  # largest action/state difference from the checkpoint's policy in the check


def default_output(checkpoint: Path, format_: str) -> Path:
    """``<run>/export/savedmodel`` or ``<run>/export/policy.<ext>`` for checkpoint.h5; a checkpoint of
    another name (best.h5) exports into ``<run>/export/<stem>/`` so the two never collide."""
    folder = checkpoint.parent / "export"
    if checkpoint.stem != "checkpoint":
        folder = folder / checkpoint.stem
    return folder / ("savedmodel" if format_ == "savedmodel" else f"policy{SUFFIXES[format_]}")


def check_output(output: Path, format_: str, force: bool) -> None:
    """Refuse an output of the wrong kind, or one that exists without --force. --force replaces only what
    looks like an earlier export, never an arbitrary folder."""
    problem = name_problem(output) or blocked_folder_problem(output.parent)  # before TensorFlow builds the policy
    if problem:
        raise ExportError(f"--output {output}: {problem}")
    if format_ == "savedmodel":
        if output.suffix.lower() in SUFFIXES.values():
            raise ExportError(f"--output {output}: a SavedModel is a folder; give a path without {output.suffix}")
        if os.path.lexists(output):  # a symbolic link to nothing too: the user's, not to be replaced unasked
            if not output.is_dir():
                raise ExportError(f"--output {output}: exists and is not a folder")
            try:
                holds_something = any(output.iterdir())
            except OSError as exc:
                raise ExportError(f"--output {output}: cannot read the folder ({exc.strerror})") from None
            if holds_something and not (output / "saved_model.pb").exists():
                raise ExportError(f"--output {output}: a folder that is not a SavedModel; rdpg will not replace "
                                  "it, even with --force")
            if not force:
                raise ExportError(f"--output {output}: already exists; use --force to overwrite it")
        return
    suffix = SUFFIXES[format_]
    if output.suffix.lower() != suffix:
        raise ExportError(f"--output {output}: {_article(format_)} {format_} export needs a "
                          f"{suffix} file name")
    if format_ == "keras" and output.suffix != suffix:
        raise ExportError(f"--output {output}: a keras export needs a {suffix} file name in lower case "
                          f"(keras.saving.load_model refuses {output.suffix})")
    sidecar = metadata_path(output, format_)
    problem = name_problem(sidecar)
    if problem:
        raise ExportError(f"--output {output}: the name leaves no room for its sidecar, the name + .json "
                          f"({problem}); give a shorter one")
    for path in (output, sidecar):
        if path.is_dir():
            raise ExportError(f"--output {output}: {path} is a folder")
        if os.path.lexists(path) and not force:  # a symbolic link to nothing too: the user's link
            raise ExportError(f"--output {output}: {path} already exists; use --force to overwrite it")


def _raw_observation_space(config: Config) -> Any:
    """The environment's observation space before the preset's masking: what an exported policy takes."""
    from rdpg_cli.envs import make_env

    env = make_env(config.replace("env", observation_indices=None))
    try:
        return env.observation_space
    finally:
        env.close()


def _metadata(format_: str, config: Config, agent: Any, data: Any, checkpoint: Path, space: Any
              ) -> PolicyMetadata:
    net = config.network
    state = [StateSpec(n, net.units, n) for n in ENCODER_STATE_NAMES[net.recurrent]]
    if net.history == "obs+prev_action":
        state.append(StateSpec("prev_action", agent.spec.action_dim, "prev_action"))
    if format_ == "onnx":
        state = [StateSpec(s.name, s.size, f"next_{s.name}") for s in state]
    return PolicyMetadata(
        artifact=format_,
        env_id=config.env.id,
        observation_dim=int(space.shape[0]),
        observation_indices=None if config.env.observation_indices is None else list(config.env.observation_indices),
        observation_low=_finite_or_none(space.low),
        observation_high=_finite_or_none(space.high),
        action_dim=agent.spec.action_dim,
        action_low=[float(v) for v in agent.spec.low],
        action_high=[float(v) for v in agent.spec.high],
        recurrent=net.recurrent,
        history=net.history,
        state=state,
        config_yaml=data.config_yaml,
        checkpoint=str(checkpoint.resolve()),
        env_steps=int(data.counters.get("env_steps", 0)),
    )


UNBOUNDED = 1.0e30


def parity_inputs(meta: PolicyMetadata, batch: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Observations inside the env's observation space (a normal spread where unbounded), then extreme ones
    far outside it, with random states: the inputs the export check and the tests compare on."""
    rng = np.random.default_rng(seed)
    # A bound beyond UNBOUNDED (float32's largest number, as CartPole's velocity has) means no bound: drawing
    # between +-3.4e38, and a thousand times that, would test overflow, not the artifact.
    low = np.array([-1.0 if v is None or v < -UNBOUNDED else v for v in meta.observation_low])
    high = np.array([1.0 if v is None or v > UNBOUNDED else v for v in meta.observation_high])
    typical = rng.uniform(low, high, (batch, meta.observation_dim))
    scale = np.maximum(np.abs(low), np.abs(high))
    signs = rng.choice([-1.0, 1.0], (batch, meta.observation_dim))
    extreme = signs * scale * rng.choice([1.0, 10.0, 1000.0], (batch, meta.observation_dim))
    feed = {"observation": np.concatenate([typical, extreme]).astype(np.float32)}
    for s in meta.state:
        if s.name == "prev_action":
            feed[s.name] = rng.uniform(meta.action_low, meta.action_high, (2 * batch, s.size)).astype(np.float32)
        else:
            feed[s.name] = rng.normal(0.0, 0.5, (2 * batch, s.size)).astype(np.float32)
    return feed


def max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    if set(a) != set(b):
        raise ExportError(f"the artifact returns {sorted(a)}, the policy {sorted(b)}")
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a)


def _check_writable(output: Path, destination: Path, format_: str) -> None:
    """Refuse an output folder rdpg cannot write in before the slow part, in the words the keras and tflite
    writers' OSError gives: TensorFlow's SavedModel writer raises its own PermissionDeniedError (not an
    OSError), and tf2onnx's failure would read as a conversion problem. A file is made and removed, the test
    that also holds for root in a folder made immutable (where os.access says yes). ``destination``: where
    ``output`` is written (the folder a symbolic link points to)."""
    folders = [destination.parent]
    if format_ == "savedmodel" and destination.is_dir():
        folders.append(destination)  # --force: the new SavedModel's entries are moved into it
    for folder in folders:
        problem = cannot_write_in(folder, ".rdpg-probe-")  # short: the output's own name may be near the limit
        if problem is not None:
            raise ExportError(f"--output {output}: cannot write it ({problem})")


def _is_tf_write_error(exc: BaseException) -> bool:
    """A file-system failure inside TensorFlow's SavedModel writer, which raises tf.errors, not OSError (the
    up-front check catches a read-only folder; this, a disk that fills up during the write)."""
    import tensorflow as tf

    return isinstance(exc, tf.errors.PermissionDeniedError | tf.errors.ResourceExhaustedError
                      | tf.errors.UnavailableError | tf.errors.FailedPreconditionError)


# What a SavedModel writes in its folder (and rdpg's assets.extra/): the entries --force replaces (in an
# assets.extra/ that is there already, only rdpg's metadata file).
SAVEDMODEL_ENTRIES = ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb", "variables", "assets",
                      "assets.extra")


def _remove_temporaries(tmp: Path, sidecar_tmp: Path, created_folders: list[Path]) -> None:
    """An export's temporary file or folder and sidecar, and the folders it made (deepest first) where nothing
    was placed in them ("nothing was written" means not even those)."""
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    # On a read-only file system unlink raises EROFS even for a file that is not there: that must not
    # replace the error that explains the failure.
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        sidecar_tmp.unlink(missing_ok=True)
    remove_made_folders(created_folders)


def _place(moves: list[tuple[Path, Path]], output: Path, force: bool) -> None:
    """Move each finished temporary (the sidecar, then the artifact) to its place. With --force an older
    artifact there is replaced, only once the new one is complete, so a failed export leaves it as it was.
    Without, nothing that appeared at a place since ``check_output`` (another export to the same output) is
    replaced: the export ends saying so, and whatever it fails on, it takes back what it had placed (a sidecar
    without its file would describe nothing)."""
    if force:
        for tmp, dest in moves:
            if tmp.is_dir() and dest.is_dir():
                _replace_savedmodel(tmp, dest)
            else:
                os.replace(tmp, dest)
        return
    placed: list[tuple[Path, tuple[int, int] | None]] = []
    try:
        for tmp, dest in moves:
            identity = file_identity(tmp)
            place_new(tmp, dest)
            placed.append((dest, identity))
    except BaseException as exc:
        for ours, identity in placed:
            if file_identity(ours) == identity:  # still this export's file, not one put there since
                with contextlib.suppress(OSError):
                    ours.unlink()
        if isinstance(exc, FileExistsError):
            raise ExportError(f"--output {output}: {dest} appeared while exporting (another export to the same "
                              "output?); it was left as it is; use --force to overwrite it") from None
        raise


def _replace_savedmodel(tmp: Path, dest: Path) -> None:
    """Replace the SavedModel in folder ``dest`` with the one in ``tmp``, entry by entry: only the entries a
    SavedModel writes are replaced; the user's other files in the folder (notes, a client script) stay, and so
    do those in its assets.extra/ (TF Serving's warm-up requests), where only rdpg's metadata is replaced. The
    old entries are set aside first and put back if a move fails."""
    old = dest.with_name(temporary_name(".rdpg-export-old-"))
    old.mkdir()
    extra = "assets.extra"
    new_entries = [entry.name for entry in tmp.iterdir()]
    if (dest / extra).is_dir() and (tmp / extra).is_dir():  # a link to a folder stays one: replaced through it
        (old / extra).mkdir()
        new_entries = [name for name in new_entries if name != extra]
        new_entries += [f"{extra}/{entry.name}" for entry in (tmp / extra).iterdir()]
        names = sorted({*(n for n in SAVEDMODEL_ENTRIES if n != extra), f"{extra}/{METADATA_NAME}", *new_entries})
    else:
        names = sorted({*SAVEDMODEL_ENTRIES, *new_entries})
    set_aside, placed = [], []
    try:
        for name in names:
            if os.path.lexists(dest / name):
                os.replace(dest / name, old / name)
                set_aside.append(name)
        for name in new_entries:
            os.replace(tmp / name, dest / name)
            placed.append(name)
    except BaseException:  # a failed move, or Ctrl-C between moves: the old SavedModel is put back whole
        for name in placed:
            os.replace(dest / name, tmp / name)
        for name in set_aside:
            os.replace(old / name, dest / name)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def known_format(format_: str) -> str:
    """``format_`` as one of FORMATS (any case), or a one-line ExportError."""
    if format_.strip().lower() not in FORMATS:
        raise ExportError(f"--format {format_}: unknown; choose one of {', '.join(FORMATS)}")
    return format_.strip().lower()


def export_policy(checkpoint: Path, format_: str, output: Path | None = None, force: bool = False
                  ) -> ExportResult:
    """Write ``checkpoint``'s deterministic policy as ``format_``; -> what was written and how closely it
    matched the checkpoint's own policy."""
    format_ = known_format(format_)
    from rdpg_cli.checkpoint import find_checkpoint

    checkpoint = find_checkpoint(Path(checkpoint))
    output = Path(output) if output is not None else default_output(checkpoint, format_)
    check_output(output, format_, force)
    if format_ == "onnx":  # before the slow part: a missing extra is found at once
        _import_tf2onnx()
        _import_onnxruntime()

    from rdpg_cli.policy import load_agent

    config, agent, data = load_agent(checkpoint)
    space = _raw_observation_space(config)
    meta = _metadata(format_, config, agent, data, checkpoint, space)
    model = build_policy_model(agent, config, meta.observation_dim)
    feed = parity_inputs(meta)
    expected = reference_step(agent, config, feed)
    if not all(np.all(np.isfinite(values)) for values in expected.values()):
        raise ExportError(f"{checkpoint}: its policy's actions are non-finite on test observations (the weights "
                          "diverged?); nothing to export")

    try:
        created = make_folder(output.parent)  # removed again on a failure
    except FileExistsError:
        raise ExportError(f"--output {output}: cannot create its folder (a file is in the way)") from None
    except OSError as exc:
        raise ExportError(f"--output {output}: cannot create its folder ({exc.strerror})") from None
    # Same folder (so the final rename is atomic), the suffix in lower case (onnx and tflite outputs may have
    # theirs in any case), and short: a name derived from the output's own would pass the file system's limit
    # of 255 bytes where the output's name is near it.
    # A SavedModel folder reached through a symbolic link is replaced entry by entry in the folder the link
    # points to, so the new one is written beside that folder, on its file system (entries cannot be moved
    # across file systems).
    destination = output.resolve() if format_ == "savedmodel" and output.is_dir() else output
    tmp = destination.with_name(temporary_name(".rdpg-export-", output.suffix.lower()))
    sidecar_tmp = tmp.with_name(tmp.name + ".json")
    placed = False
    try:
        _check_writable(output, destination, format_)
        try:
            WRITERS[format_](model, meta, tmp)
        except Exception as exc:  # TensorFlow's writer reports a file-system failure as tf.errors
            if not _is_tf_write_error(exc):
                raise
            raise OSError(None, reason(exc)) from None
        stop_if_a_signal_was_swallowed()  # before the check, which loads the file in its runtime (seconds)
        if format_ != "savedmodel":
            size, sha256 = size_and_sha256(tmp.read_bytes())
            meta = dataclasses.replace(meta, file_bytes=size, file_sha256=sha256)
            sidecar_tmp.write_text(meta.to_json())
        # The check runs the file just written, in its own runtime, before it replaces anything.
        runner = RUNNERS[format_](tmp, meta)
        difference = max_difference(runner.step(feed), expected)
        del runner  # the TFLite interpreter and ORT session hold the file open
        if not difference <= PARITY_TOLERANCE:
            raise ExportError(f"the {format_} artifact's actions differ from the checkpoint's by {difference:.3g} "
                              f"(> {PARITY_TOLERANCE:g}); nothing was written")
        # The file and its sidecar move together: a Ctrl-C between the two renames left the old file beside the
        # new sidecar, which describes another file (neither evaluated), or a sidecar with no file.
        with stop_signals_deferred():
            stop_if_a_signal_was_swallowed()  # here, where no signal can be dropped any more
            moves = [(tmp, destination)]
            if format_ != "savedmodel":
                moves.insert(0, (sidecar_tmp, metadata_path(output, format_)))
            _place(moves, output, force)
            placed = True
    except OSError as exc:
        raise ExportError(f"--output {output}: cannot write it ({exc.strerror or exc})") from None
    finally:
        # Held against a second Ctrl-C too (the first may be what brought us here): cut short, the clean-up
        # left a half-removed temporary SavedModel beside the user's files.
        with stop_signals_deferred():
            _remove_temporaries(tmp, sidecar_tmp, [] if placed else created)
    return ExportResult(path=output, format=format_, checkpoint=checkpoint, metadata=meta,
                        max_difference=difference)


def run_export(checkpoint: Path, format_: str, output: Path | None, force: bool, console: Any) -> None:
    """The ``rdpg export`` command once its checkpoint is chosen: export, report. ``console`` is a Rich
    console, or None for --quiet (then only the written path is printed)."""
    result = export_policy(checkpoint, format_, output, force)
    if console is None:
        emit(str(result.path))
        return
    meta = result.metadata
    state = ", ".join(f"{s.name}[{s.size}]" for s in meta.state) or "none (feed-forward)"
    # soft_wrap: paths stay on one line, whole, for copying.
    console.print(f"wrote {result.format} policy to [bold]{result.path}[/]", highlight=False, soft_wrap=True)
    console.print(f"  from {result.checkpoint} ({meta.env_steps} env steps), {meta.env_id}; state: {state}; "
                  f"max difference from the checkpoint's policy {result.max_difference:.1e}", highlight=False,
                  soft_wrap=True)
    if result.format != "savedmodel":
        console.print(f"  metadata: {metadata_path(result.path, result.format)}", highlight=False, soft_wrap=True)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
