"""Export (issue 5): SavedModel, TFLite, ONNX and Keras artifacts reproduce the in-process policy, carry their
recurrent state explicitly, run without rdpg, and `rdpg evaluate` on them equals `rdpg evaluate` on the checkpoint.

Two real checkpoints are trained once per session with tiny settings: a feed-forward one, and an LSTM one that
reads (observation, previous action) and sees only two of Pendulum's three observation components, so masking,
the previous-action input and the recurrent state are all exercised. The artifacts are read back through each
format's own runtime here, not through rdpg's loader, so a loader bug cannot hide an artifact bug.
"""

from __future__ import annotations

import hashlib
import importlib.util
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import TINY as CONFTEST_TINY
from conftest import drop_a_stop_signal, rdpg
from typer.testing import CliRunner

from rdpg_cli import __version__
from rdpg_cli import export as exporting
from rdpg_cli.cli import app
from rdpg_cli.errors import ExportError
from rdpg_cli.policy import AgentPolicy, load_agent

FORMATS = ["savedmodel", "tflite", "onnx", "keras"]
KINDS = ["ff", "rec"]
# The bounds: the same kernels (SavedModel, Keras) versus another runtime's (TFLite, ONNX).
TOLERANCE = {"savedmodel": 1e-5, "keras": 1e-5, "tflite": 1e-4, "onnx": 1e-4}
TINY = ["--steps", "300", *CONFTEST_TINY, "--set", "train.eval_every=300"]
RECURRENT = [
    "--set", "network.recurrent=lstm", "--set", "network.units=8", "--set", "network.history=obs+prev_action",
    "--set", "replay.sequence_length=4", "--set", "replay.burn_in=2", "--set", "env.observation_indices=[0,1]",
    # The policy is the averaged (target) actor, as in pendulum-novel; a fast average keeps it far
    # enough from the online actor that exporting the wrong one fails every parity test below.
    "--set", "agent.policy_weights=averaged", "--set", "agent.target_update=0.5",
]



def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


onnx_installed = pytest.mark.skipif(
    not (installed("tf2onnx") and installed("onnxruntime")),
    reason="the onnx extra is not installed (pip install '.[onnx]'; the test extra includes it)")


def needs(fmt: str) -> list:
    return [onnx_installed] if fmt == "onnx" else []


FORMAT_PARAMS = [pytest.param(f, marks=needs(f)) for f in FORMATS]


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------------------------------------- fixtures


def train(where: Path, extra: list[str]) -> Path:
    code, _, err = cli("train", "--preset", "pendulum", *TINY, *extra, "--run-dir", str(where), "--quiet")
    assert code == 0, err
    return where / "checkpoint.h5"


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    return {"ff": train(root / "ff", []), "rec": train(root / "rec", RECURRENT)}


@pytest.fixture(scope="session")
def artifact(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """``artifact(kind, format) -> path``, each exported once per session."""
    root = tmp_path_factory.mktemp("exports")
    made: dict[tuple[str, str], Path] = {}

    def get(kind: str, fmt: str) -> Path:
        if (kind, fmt) not in made:
            output = root / kind / ("savedmodel" if fmt == "savedmodel" else f"policy.{fmt}")
            result = exporting.export_policy(checkpoints[kind], fmt, output)
            assert result.path == output
            made[kind, fmt] = output
        return made[kind, fmt]

    return get


@pytest.fixture(scope="session")
def policies(checkpoints: dict[str, Path]) -> dict[str, AgentPolicy]:
    return {kind: AgentPolicy(load_agent(path)[1]) for kind, path in checkpoints.items()}


@pytest.fixture(scope="session")
def checkpoint_returns(checkpoints: dict[str, Path]):
    cache: dict[str, list[float]] = {}

    def get(kind: str) -> list[float]:
        if kind not in cache:
            cache[kind] = evaluate_returns(checkpoints[kind])
        return cache[kind]

    return get


def evaluate_returns(path: Path) -> list[float]:
    code, out, err = cli("evaluate", str(path), "--episodes", "2", "--seed", "7", "--json")
    assert code == 0, err
    return json.loads(out)["returns"]


# ------------------------------------------------------------------------------- each format's runtime


def metadata(fmt: str, path: Path) -> dict:
    where = path / "assets.extra" / "rdpg_policy.json" if fmt == "savedmodel" else Path(f"{path}.json")
    return json.loads(where.read_text())


class Raw:
    """One batched policy step through the format's own runtime, as a client without rdpg would call it.
    Returns the action and the next state under the state's input names."""

    def __init__(self, fmt: str, path: Path):
        self.fmt = fmt
        self.meta = metadata(fmt, path)
        if fmt == "savedmodel":
            import tensorflow as tf

            self.loaded = tf.saved_model.load(str(path))
            self.run = lambda feed: {k: v.numpy() for k, v in self.loaded.signatures["serving_default"](
                **{k: tf.constant(v) for k, v in feed.items()}).items()}
        elif fmt == "tflite":
            import tensorflow as tf

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
                self.interpreter = tf.lite.Interpreter(model_path=str(path))
            runner = self.interpreter.get_signature_runner("serving_default")
            self.run = lambda feed: {k: np.array(v) for k, v in runner(**feed).items()}
        elif fmt == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [o.name for o in session.get_outputs()]
            back = {s["output"]: s["name"] for s in self.meta["state"]}
            self.run = lambda feed: {back.get(n, n): v for n, v in zip(names, session.run(names, feed), strict=True)}
        else:
            import keras

            model = keras.saving.load_model(str(path), safe_mode=True)
            self.run = lambda feed: {k: np.asarray(v) for k, v in model(feed).items()}

    def zero_state(self, batch: int) -> dict[str, np.ndarray]:
        if self.fmt == "savedmodel" and self.meta["state"]:
            import tensorflow as tf

            state = self.loaded.signatures["initial_state"](batch_size=tf.constant(batch))
            return {k: v.numpy() for k, v in state.items()}
        if self.fmt == "tflite" and self.meta["state"]:
            runner = self.interpreter.get_signature_runner("initial_state")
            return {k: np.array(v) for k, v in runner(batch_size=np.array(batch, np.int32)).items()}
        return {s["name"]: np.zeros((batch, s["size"]), np.float32) for s in self.meta["state"]}


def masked(meta: dict, observation: np.ndarray) -> np.ndarray:
    """What the in-process policy sees: the env's masking wrapper keeps these components."""
    indices = meta["observation"]["indices"]
    return observation if indices is None else observation[..., indices]


def test_observations(meta: dict, n: int = 16) -> np.ndarray:
    """Random observations inside Pendulum's observation box, then extreme ones far outside it."""
    rng = np.random.default_rng(11)
    low, high = np.array(meta["observation"]["low"]), np.array(meta["observation"]["high"])
    inside = rng.uniform(low, high, (n, low.size))
    corners = rng.choice([-1.0, 1.0], (n, low.size)) * high * rng.choice([1.0, 10.0, 1.0e3, 1.0e5], (n, low.size))
    return np.concatenate([inside, corners, np.zeros((1, low.size))]).astype(np.float32)


test_observations.__test__ = False  # a helper, not a test


# ------------------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
@pytest.mark.parametrize("kind", KINDS)
def test_actions_equal_the_in_process_policy(kind: str, fmt: str, artifact, policies):
    raw = Raw(fmt, artifact(kind, fmt))
    observations = test_observations(raw.meta)
    out = raw.run({"observation": observations, **raw.zero_state(len(observations))})
    policy = policies[kind]
    expected = []
    for observation in observations:
        policy.reset()
        expected.append(policy.act(masked(raw.meta, observation)))
    action = out["action"]
    assert action.dtype == np.float32 and action.shape == (len(observations), 1)
    np.testing.assert_allclose(action, np.array(expected), rtol=0, atol=TOLERANCE[fmt])
    assert np.all(action >= -2.0) and np.all(action <= 2.0)
    if kind == "ff":  # a ReLU net grows without bound on extreme inputs, so clipping must have acted
        assert np.any(np.abs(action) == 2.0)
    assert sorted(out) == sorted(["action", *(s["name"] for s in raw.meta["state"])])


def test_recurrent_artifact_is_the_averaged_actor_not_the_online_one(artifact, checkpoints):
    """With ``agent.policy_weights: averaged`` the artifact carries the target actor; the online actor, acting
    on the same observations, gives other actions (so the parity tests above would catch the wrong one)."""
    raw = Raw("savedmodel", artifact("rec", "savedmodel"))
    observations = test_observations(raw.meta)
    out = raw.run({"observation": observations, **raw.zero_state(len(observations))})
    agent = load_agent(checkpoints["rec"])[1]
    online, averaged = AgentPolicy(agent, exploring=True), AgentPolicy(agent)
    by_online, by_averaged = [], []
    for observation in observations:
        online.reset()
        averaged.reset()
        by_online.append(online.act(masked(raw.meta, observation)))
        by_averaged.append(averaged.act(masked(raw.meta, observation)))
    np.testing.assert_allclose(out["action"], np.array(by_averaged), rtol=0, atol=TOLERANCE["savedmodel"])
    assert np.max(np.abs(out["action"] - np.array(by_online))) > 100 * TOLERANCE["savedmodel"]


@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
@pytest.mark.parametrize("kind", KINDS)
def test_rollout_with_state_fed_back_matches(kind: str, fmt: str, artifact, policies):
    """50 environment steps: the artifact, fed the raw observations and its own state outputs, acts as the
    in-process policy does (which keeps its state and previous action internally)."""
    raw = Raw(fmt, artifact(kind, fmt))
    state = raw.zero_state(1)
    for spec in raw.meta["state"]:
        np.testing.assert_array_equal(state[spec["name"]], np.zeros((1, spec["size"]), np.float32))
    policy = policies[kind]
    policy.reset()
    env = gym.make("Pendulum-v1")
    observation, _ = env.reset(seed=5)
    worst = 0.0
    for _ in range(50):
        expected = policy.act(masked(raw.meta, np.asarray(observation, np.float32)))
        out = raw.run({"observation": np.asarray(observation, np.float32)[None], **state})
        state = {s["name"]: out[s["name"]] for s in raw.meta["state"]}
        worst = max(worst, float(np.max(np.abs(out["action"][0] - expected))))
        observation, *_ = env.step(expected)
    env.close()
    assert worst <= TOLERANCE[fmt]
    if kind == "rec":
        assert sorted(state) == ["prev_action", "state_c", "state_h"]
        assert np.any(state["state_h"] != 0.0)


@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_on_the_artifact_equals_evaluate_on_the_checkpoint(kind: str, fmt: str, artifact,
                                                                     checkpoint_returns):
    np.testing.assert_allclose(evaluate_returns(artifact(kind, fmt)), checkpoint_returns(kind), rtol=1e-4)


def test_metadata_describes_the_policy(artifact, checkpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for fmt in ("savedmodel", "keras"):
        meta = metadata(fmt, artifact("rec", fmt))
        assert meta["format"] == "rdpg-policy" and meta["artifact"] == fmt
        assert meta["env_id"] == "Pendulum-v1" and meta["rdpg_version"] == __version__
        assert meta["observation"] == {"dim": 3, "indices": [0, 1], "low": [-1.0, -1.0, -8.0],
                                       "high": [1.0, 1.0, 8.0]}
        assert meta["action"] == {"dim": 1, "low": [-2.0], "high": [2.0]}
        assert meta["inputs"] == ["observation", "state_h", "state_c", "prev_action"]
        assert "recurrent: lstm" in meta["config"] and meta["checkpoint"] == str(checkpoints["rec"])
    # `rdpg evaluate` needs nothing but the artifact: not the checkpoint, not the run folder.
    moved = tmp_path
    for name in ("policy.tflite", "policy.tflite.json"):
        shutil.copy(artifact("rec", "tflite").parent / name, moved / name)

    def no_checkpoints(*args, **kwargs):
        raise AssertionError("an exported policy was evaluated by reading a checkpoint")

    monkeypatch.setattr("rdpg_cli.checkpoint.read_checkpoint", no_checkpoints)
    monkeypatch.setattr("rdpg_cli.policy.read_checkpoint", no_checkpoints)
    code, out, err = cli("evaluate", str(moved / "policy.tflite"), "--episodes", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["episodes"] == 1


# ----------------------------------------------------------------------------- outside rdpg's process

FRESH_CLIENT = r"""
import sys

class NoRdpg:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "rdpg_cli":
            raise ImportError("this client must not need rdpg_cli")

sys.meta_path.insert(0, NoRdpg())
import numpy as np
import tensorflow as tf

for model_dir, observations_file, actions_file in zip(*[iter(sys.argv[1:])] * 3):
    loaded = tf.saved_model.load(model_dir)
    serve = loaded.signatures["serving_default"]
    state = {}
    if "initial_state" in loaded.signatures:
        state = loaded.signatures["initial_state"](batch_size=tf.constant(1))
    actions = []
    for observation in np.load(observations_file):
        out = serve(observation=tf.constant(observation[None]), **state)
        state = {k: out[k] for k in state}
        actions.append(out["action"].numpy()[0])
    np.save(actions_file, np.array(actions))
assert not [m for m in sys.modules if m.startswith("rdpg_cli")]
"""


def recorded_rollout(policy: AgentPolicy, meta: dict, steps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Raw observations of one episode driven by the in-process policy, and its actions."""
    env = gym.make("Pendulum-v1")
    observation, _ = env.reset(seed=9)
    policy.reset()
    observations, actions = [], []
    for _ in range(steps):
        observations.append(np.asarray(observation, np.float32))
        actions.append(policy.act(masked(meta, observations[-1])))
        observation, *_ = env.step(actions[-1])
    env.close()
    return np.array(observations), np.array(actions)


def test_savedmodel_runs_in_a_fresh_process_without_rdpg(artifact, policies, tmp_path: Path):
    args, expected = [], {}
    for kind in KINDS:
        path = artifact(kind, "savedmodel")
        observations, expected[kind] = recorded_rollout(policies[kind], metadata("savedmodel", path))
        np.save(tmp_path / f"{kind}-obs.npy", observations)
        args += [str(path), str(tmp_path / f"{kind}-obs.npy"), str(tmp_path / f"{kind}-actions.npy")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", FRESH_CLIENT, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for kind in KINDS:
        np.testing.assert_allclose(np.load(tmp_path / f"{kind}-actions.npy"), expected[kind], rtol=0, atol=1e-5)


def readme_savedmodel_snippet() -> str:
    """The README's example of running an exported SavedModel, as printed there."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```python\n")[1:]
    (snippet,) = [block.split("```", 1)[0] for block in blocks if "tf.saved_model.load(" in block]
    return snippet


@pytest.mark.parametrize("kind", KINDS)
def test_the_readme_savedmodel_snippet_runs_as_written(kind: str, artifact, policies):
    """Feed-forward and recurrent alike, with only the path replaced: one Pendulum episode, its actions the
    in-process policy's."""
    snippet = readme_savedmodel_snippet()
    assert snippet.count('"runs/pendulum-novel/<stamp>/export/savedmodel"') == 1
    path = artifact(kind, "savedmodel")
    namespace: dict = {}
    exec(snippet.replace('"runs/pendulum-novel/<stamp>/export/savedmodel"', repr(str(path))), namespace)
    assert namespace["truncated"]  # Pendulum's 200 steps, run to the end
    # The same episode driven by the in-process policy ends in the same state.
    env, policy = gym.make("Pendulum-v1"), policies[kind]
    observation, _ = env.reset(seed=0)
    policy.reset()
    meta = metadata("savedmodel", path)
    for _ in range(200):
        observation, *_ = env.step(policy.act(masked(meta, np.asarray(observation, np.float32))))
    np.testing.assert_allclose(namespace["obs"], observation, rtol=0, atol=1e-4)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_a_recurrent_export_has_design_s_step_and_initial_state(artifact, fmt):
    """DESIGN §6: a recurrent policy carries its state as initial_state(batch_size) and
    step(observation, state) -> (action, state); `step` is the serving_default function under that name."""
    import tensorflow as tf

    path = artifact("rec", fmt)
    raw = Raw(fmt, path)
    if fmt == "savedmodel":
        assert {"step", "initial_state", "serving_default"} <= set(raw.loaded.signatures)
        step = raw.loaded.signatures["step"]
    else:
        assert set(raw.interpreter.get_signature_list()) == {"step", "initial_state", "serving_default"}
        step = raw.interpreter.get_signature_runner("step")

    def call(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if fmt == "savedmodel":
            return {k: v.numpy() for k, v in step(**{k: tf.constant(v) for k, v in feed.items()}).items()}
        return {k: np.array(v) for k, v in step(**feed).items()}
    observations = test_observations(raw.meta, n=3)
    by_step, by_default = raw.zero_state(1), raw.zero_state(1)
    for observation in observations[:5]:
        by_step = call({"observation": observation[None], **by_step})
        by_default = raw.run({"observation": observation[None], **by_default})
        assert by_step.keys() == by_default.keys()
        for key in by_step:
            np.testing.assert_array_equal(by_step[key], by_default[key])
        by_step.pop("action"), by_default.pop("action")


def test_a_loaded_savedmodels_step_takes_its_inputs_by_name(artifact):
    """``loaded.step(observation=..., **loaded.initial_state(n))``, as the signatures take them: its arguments
    were state_0, state_1, ..., so only a positional call worked, in an order documented nowhere (and
    ``initial_state`` returns its dict in another)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact("rec", "savedmodel")))
    observation = tf.constant(test_observations(Raw("savedmodel", artifact("rec", "savedmodel")).meta, n=1)[:2])
    by_name = loaded.step(observation=observation, **loaded.initial_state(2))
    by_signature = loaded.signatures["step"](observation=observation, **loaded.initial_state(2))
    assert by_name.keys() == by_signature.keys()
    for key in by_name:
        np.testing.assert_array_equal(by_name[key].numpy(), by_signature[key].numpy())


@pytest.mark.parametrize("off", ["state_h", "prev_action"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_state_of_another_batch_size_than_the_observations_is_refused(artifact, fmt, off):
    """A state of batch 1 beside 2 observations was broadcast by the cell's arithmetic (both rows from one
    state) instead of refused; a client that sized initial_state wrongly got wrong rows without a word. The
    Keras model, called directly, broadcast it too. The SavedModel says so in its own words, whichever input
    is off (a previous action of another batch met the model's concatenation first, whose message it gave)."""
    raw = Raw(fmt, artifact("rec", fmt))
    observations = test_observations(raw.meta, n=1)[:2]
    state = raw.zero_state(2)
    state[off] = np.zeros((1, state[off].shape[-1]), np.float32)
    for _ in range(5 if fmt == "savedmodel" else 1):  # ops that do not wait for each other run in any order
        with pytest.raises(Exception) as info:
            raw.run({"observation": observations, **state})
        assert info.type.__name__ not in ("AssertionError", "KeyError", "TypeError"), info.value
        if fmt == "savedmodel":
            assert "batch size must be the observation" in str(info.value), info.value  # TF escapes the quote
    good = raw.run({"observation": observations, **raw.zero_state(2)})
    assert good["action"].shape[0] == 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_nan_observation_gives_a_nan_action_in_every_format(artifact, kind, fmt):
    """A failed sensor must not come out as a plausible action: the SavedModel gave a finite one (oneDNN's
    fused matmul + bias + ReLU turns NaN into 0 in a graph), the other formats NaN; and the recurrent Keras
    file a finite one for an inf (the LSTM's saturating gates absorbed it)."""
    raw = Raw(fmt, artifact(kind, fmt))
    observations = np.repeat(test_observations(raw.meta, n=1)[:1], 5, axis=0)
    observations[0, 0] = np.nan  # a component every policy here reads
    observations[1, 2] = np.nan  # one the recurrent policy's env.observation_indices [0, 1] leave out
    observations[3, 0] = np.inf
    observations[4, 1] = -np.inf
    out = raw.run({"observation": observations, **raw.zero_state(5)})
    assert np.all(np.isnan(out["action"][0])), out["action"]
    assert np.all(np.isnan(out["action"][1]) if kind == "ff" else np.isfinite(out["action"][1])), out["action"]
    assert np.all(np.isfinite(out["action"][2])), out["action"]
    assert np.all(np.isnan(out["action"][3:])), out["action"]


def saved_model_cli() -> list[str]:
    script = Path(sys.executable).with_name("saved_model_cli")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def test_saved_model_cli_shows_and_runs_the_signatures(artifact, policies, tmp_path: Path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    path = artifact("rec", "savedmodel")
    shown = subprocess.run([*saved_model_cli(), "show", "--dir", str(path), "--all"], capture_output=True,
                           text=True, env=env, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "signature_def['serving_default']" in shown.stdout
    assert "signature_def['initial_state']" in shown.stdout
    for name in ("observation", "state_h", "state_c", "prev_action"):
        assert f"inputs['{name}']" in shown.stdout

    for kind in KINDS:
        path = artifact(kind, "savedmodel")
        meta = metadata("savedmodel", path)
        observations = test_observations(meta, n=4)
        feeds = {"observation": observations}
        feeds.update({s["name"]: np.zeros((len(observations), s["size"]), np.float32) for s in meta["state"]})
        for name, value in feeds.items():
            np.save(tmp_path / f"{kind}-{name}.npy", value)
        inputs = ";".join(f"{name}={tmp_path / f'{kind}-{name}.npy'}" for name in feeds)
        outdir = tmp_path / f"{kind}-out"
        ran = subprocess.run([*saved_model_cli(), "run", "--dir", str(path), "--tag_set", "serve",
                              "--signature_def", "serving_default", "--inputs", inputs, "--outdir", str(outdir)],
                             capture_output=True, text=True, env=env, timeout=300)
        assert ran.returncode == 0, ran.stderr[-2000:]
        policy = policies[kind]
        expected = []
        for observation in observations:
            policy.reset()
            expected.append(policy.act(masked(meta, observation)))
        np.testing.assert_allclose(np.load(outdir / "action.npy"), np.array(expected), rtol=0, atol=1e-5)
        assert sorted(p.stem for p in outdir.glob("*.npy")) == sorted(["action", *(s["name"] for s in meta["state"])])


# ---------------------------------------------------------------------------------- the model itself


@pytest.mark.parametrize("overrides", [
    {"network.recurrent": "gru", "network.units": 5},
    {"network.history": "obs+prev_action"},
    {"agent.bounding": "tanh", "network.recurrent": "lstm", "network.units": 3, "env.observation_indices": [2, 0]},
], ids=["gru", "ff-prev-action", "tanh-lstm-masked"])
def test_policy_model_matches_the_actor_for_other_architectures(overrides: dict):
    """Architectures the trained fixtures do not cover, on fresh random weights: the exported model against
    the agent's own actor over a 20-step rollout with every state output fed back."""
    from rdpg_cli.agent import Agent
    from rdpg_cli.config import load_config
    from rdpg_cli.envs import resolve_bounds

    config, spec = resolve_bounds(load_config("pendulum", {"network.actor_layers": [8, 8], **overrides}))
    agent = Agent(config, spec, seed=3)
    model = exporting.build_policy_model(agent, config, observation_dim=3)
    names = list(model.input.keys())
    rng = np.random.default_rng(0)
    feed = {n: np.zeros((4, int(model.input[n].shape[1])), np.float32) for n in names}
    for _ in range(20):
        feed["observation"] = rng.normal(0.0, 3.0, (4, 3)).astype(np.float32)
        got = {k: np.asarray(v) for k, v in model(feed).items()}
        want = exporting.reference_step(agent, config, feed)
        assert exporting.max_difference(got, want) <= 1e-5
        feed.update({k: v for k, v in got.items() if k != "action"})
    assert sorted(got) == sorted(["action", *(n for n in names if n != "observation")])


# -------------------------------------------------------------------------------------- the command


def test_export_defaults_to_the_newest_run_and_never_overwrites(checkpoints, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    older, newer = tmp_path / "runs" / "pendulum" / "a", tmp_path / "runs" / "pendulum" / "b"
    for folder in (older, newer):
        folder.mkdir(parents=True)
        shutil.copy(checkpoints["ff"], folder / "checkpoint.h5")
    os.utime(older / "checkpoint.h5", (1_000_000_000, 1_000_000_000))
    monkeypatch.chdir(tmp_path)

    code, out, err = cli("export", "--format", "keras")
    assert code == 0, err
    assert "using the newest, runs/pendulum/b/checkpoint.h5" in out
    written = Path("runs/pendulum/b/export/policy.keras")
    assert written.is_file() and Path(f"{written}.json").is_file()
    before = written.read_bytes()

    code, out, err = cli("export", "--format", "keras")
    assert code == 2 and err.count("\n") == 1
    assert "already exists; use --force" in err
    assert written.read_bytes() == before

    code, out, err = cli("export", "--format", "keras", "--force", "--quiet")
    assert code == 0, err
    assert out.strip() == str(written)
    assert not list(written.parent.glob(".*")), "temporary files left behind"

    code, out, err = cli("export", "runs/pendulum/a", "--format", "savedmodel")
    assert code == 0, err
    assert Path("runs/pendulum/a/export/savedmodel/saved_model.pb").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "pytorch"], "--format pytorch: unknown; choose one of savedmodel, tflite, onnx, keras"),
    (["missing.h5", "--format", "keras"], "missing.h5: checkpoint not found"),
    (["{ff}", "--format", "keras", "--output", "policy.onnx"], "a keras export needs a .keras file name"),
    (["{ff}", "--format", "keras", "--output", "policy.KERAS"],
     "a keras export needs a .keras file name in lower case (keras.saving.load_model refuses .KERAS)"),
    (["{ff}", "--format", "onnx", "--output", "{ff}/p.onnx"], "{ff}/p.onnx: {ff} is not a folder"),
    (["{ff}", "--format", "savedmodel", "--output", "{ff}/deeper/policy"], "{ff}/deeper/policy: {ff} is not a folder"),
    (["{ff}", "--format", "savedmodel", "--output", "notes", "--force"], "a folder that is not a SavedModel"),
])
def test_export_errors_are_one_line(args: list[str], message: str, checkpoints, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch):
    import rdpg_cli.policy

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("not a SavedModel")
    # Each is refused before TensorFlow builds the checkpoint's policy (seconds).
    monkeypatch.setattr(rdpg_cli.policy, "load_agent", lambda *_: pytest.fail("the policy was built"))
    code, _, err = cli("export", *[a.format(ff=checkpoints["ff"]) for a in args])
    assert code == 2
    assert message.format(ff=checkpoints["ff"]) in err and err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "notes" / "mine.txt").read_text() == "not a SavedModel"


def test_a_long_evaluation_says_how_far_it_is(checkpoints, monkeypatch: pytest.MonkeyPatch):
    """A line on stderr every EVERY seconds (here: after every episode but the last); stdout keeps only the
    result (--json: one JSON object); --quiet: none."""
    from rdpg_cli.cli import EvaluationProgress

    monkeypatch.setattr(EvaluationProgress, "EVERY", 0.0)
    code, out, err = cli("evaluate", str(checkpoints["ff"]), "--episodes", "3", "--json")
    assert code == 0, err
    lines = err.splitlines()
    assert [line.split(", mean")[0] for line in lines] == ["evaluating: 1/3 episodes", "evaluating: 2/3 episodes"]
    returns = json.loads(out)["returns"]
    assert lines[1] == f"evaluating: 2/3 episodes, mean return {np.mean(returns[:2]):.1f} so far"
    code, out, err = cli("evaluate", str(checkpoints["ff"]), "--episodes", "3", "--quiet")
    assert code == 0 and err == "" and "3 episodes" in out


def test_an_artifact_without_its_metadata_is_refused(artifact, tmp_path: Path):
    shutil.copy(artifact("ff", "keras"), tmp_path / "policy.keras")
    code, _, err = cli("evaluate", str(tmp_path / "policy.keras"))
    assert code == 2 and "no rdpg metadata" in err and "policy.keras.json" in err
    (tmp_path / "policy.keras.json").write_text('{"format": "rdpg-policy", "format_version": 99}')
    code, _, err = cli("evaluate", str(tmp_path / "policy.keras"))
    assert code == 2 and "newer than this rdpg reads" in err


def test_export_with_no_runs_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("export", "--format", "savedmodel")
    assert code == 2 and "none found under runs/" in err


@pytest.mark.parametrize("kind", KINDS)
def test_an_onnx_file_names_one_batch_dimension_and_carries_its_metadata(artifact, kind):
    """tf2onnx named each input's and output's batch dimension on its own (unk__86, unk__87, ...), so the file did
    not say their sizes must match; and the bounds and state names lived only in the sidecar."""
    import onnx

    path = artifact(kind, "onnx")
    model = onnx.load(str(path))
    values = [*model.graph.input, *model.graph.output]
    assert len(values) == (2 + 2 * len(metadata("onnx", path)["state"]))  # observation, action and each state
    assert [v.type.tensor_type.shape.dim[0].dim_param for v in values] == ["batch"] * len(values)
    (carried,) = [p.value for p in model.metadata_props if p.key == "rdpg_policy"]
    sidecar = metadata("onnx", path)
    assert json.loads(carried) == {k: v for k, v in sidecar.items() if k != "file"}


def test_missing_onnx_extra_is_named(checkpoints, artifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` raise ImportError
    code, _, err = cli("export", str(checkpoints["ff"]), "--format", "onnx", "--output", str(tmp_path / "p.onnx"))
    assert code == 2 and "pip install '.[onnx]' in rdpg's source folder" in err
    assert not list(tmp_path.iterdir())
    # Evaluating an ONNX policy needs onnxruntime, and says so the same way.
    if installed("tf2onnx") and installed("onnxruntime"):
        path = artifact("ff", "onnx")
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
        code, _, err = cli("evaluate", str(path), "--episodes", "1")
        assert code == 2 and "pip install '.[onnx]' in rdpg's source folder" in err


def test_an_artifact_that_disagrees_with_the_checkpoint_is_not_written(checkpoints, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    real = exporting.reference_step

    def off_by_a_little(*args):
        out = real(*args)
        out["action"] = out["action"] + 1e-3
        return out

    monkeypatch.setattr(exporting, "reference_step", off_by_a_little)
    with pytest.raises(ExportError, match="differ from the checkpoint's"):
        exporting.export_policy(checkpoints["ff"], "keras", tmp_path / "p.keras")
    assert not list(tmp_path.iterdir())
    # Nor the folders it made for it ("nothing was written").
    with pytest.raises(ExportError, match="differ from the checkpoint's"):
        exporting.export_policy(checkpoints["ff"], "tflite", tmp_path / "new" / "deeper" / "p.tflite")
    assert not list(tmp_path.iterdir())


def test_parity_inputs_take_float32_max_bounds_for_no_bounds(artifact):
    """CartPole's velocity bounds are float32's largest number: drawn between them, and scaled a thousandfold,
    the export check's observations overflowed to inf and a healthy policy read as diverged."""
    path = artifact("ff", "keras")
    meta = exporting.read_metadata(path, "keras")
    huge = float(np.finfo(np.float32).max)
    meta = dataclasses.replace(meta, observation_low=[-huge] * meta.observation_dim,
                               observation_high=[huge] * meta.observation_dim)
    observations = exporting.parity_inputs(meta)["observation"]
    assert np.all(np.isfinite(observations)) and np.abs(observations).max() <= 1000.0


def test_a_checkpoint_whose_policy_acts_non_finite_is_named_not_the_artifact(checkpoints, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    real = exporting.reference_step

    def diverged(*args):
        out = real(*args)
        out["action"] = np.full_like(out["action"], np.inf)
        return out

    monkeypatch.setattr(exporting, "reference_step", diverged)
    with pytest.raises(ExportError, match=r"its policy's actions are non-finite on test observations \(the weights "
                       r"diverged\?\); nothing to export"):
        exporting.export_policy(checkpoints["ff"], "keras", tmp_path / "new" / "p.keras")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------ damaged artifacts


def copy_export(path: Path, dest: Path, data: bytes | None = None, old_sidecar: bool = False) -> Path:
    """``path``'s export copied to ``dest`` with its sidecar, holding ``data`` instead of its bytes if
    given; an ``old_sidecar`` lacks the size and sha256 that exports record, as sidecars written before."""
    dest.write_bytes(path.read_bytes() if data is None else data)
    meta = metadata(dest.suffix[1:], path)
    if old_sidecar:
        del meta["file"]
    Path(f"{dest}.json").write_text(json.dumps(meta))
    return dest


@pytest.mark.parametrize("old_sidecar", [False, True], ids=["sidecar", "older-sidecar"])
def test_a_truncated_tflite_file_is_one_error_line_not_a_crash(old_sidecar: bool, artifact, tmp_path: Path):
    """The TFLite interpreter can die of SIGSEGV on a file cut short: through the real entry point, each cut
    is one error line and exit code 2, and the intact file still evaluates."""
    path = artifact("rec", "tflite")
    data = path.read_bytes()
    for cut in (100, 3000, len(data) - 1):
        damaged = copy_export(path, tmp_path / f"cut{cut}.tflite", data[:cut], old_sidecar)
        result = rdpg("evaluate", damaged.name, "--episodes", "1", cwd=tmp_path, check=False)
        assert result.returncode == 2, (cut, result.returncode, result.stderr)  # -11: the interpreter crashed
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
        expected = f"({cut} bytes, expected {len(data)})" if not old_sidecar else f"({cut} bytes, "
        assert f"error: {damaged.name}: damaged TFLite file {expected}" in result.stderr, result.stderr
        assert result.stderr.rstrip().endswith("export it again")
    intact = copy_export(path, tmp_path / "intact.tflite", old_sidecar=old_sidecar)
    result = rdpg("evaluate", intact.name, "--episodes", "1", "--json", cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["episodes"] == 1


def test_a_damaged_tflite_file_never_reaches_the_interpreter(artifact, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    """Every cut, with and without the recorded digest, and a same-size file with one byte changed, are
    refused before the interpreter is made (here it would fail the test rather than crash it)."""
    def no_interpreter(path):
        raise AssertionError(f"{path}: a damaged file was handed to the TFLite interpreter")

    path = artifact("rec", "tflite")  # first: the export (session fixture) checks itself with the interpreter
    monkeypatch.setattr(exporting, "tflite_interpreter", no_interpreter)
    data = path.read_bytes()
    for old_sidecar in (False, True):
        for cut in range(0, len(data), 97):
            damaged = copy_export(path, tmp_path / "cut.tflite", data[:cut], old_sidecar)
            with pytest.raises(ExportError, match=r"cut\.tflite: damaged TFLite file \("):
                exporting.load_exported_policy(damaged)
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0xFF
    damaged = copy_export(path, tmp_path / "changed.tflite", bytes(changed))
    with pytest.raises(ExportError, match="its sha256 is not the one its export recorded"):
        exporting.load_exported_policy(damaged)
    not_tflite = copy_export(path, tmp_path / "other.tflite", data[:4] + b"XXXX" + data[8:], old_sidecar=True)
    with pytest.raises(ExportError, match=r"no TFL3 identifier at bytes 4\.\.8"):
        exporting.load_exported_policy(not_tflite)


def test_a_truncated_keras_file_is_damaged_not_missing(artifact, tmp_path: Path):
    """Keras answers a cut .keras file with 'File not found' although it is there."""
    path = artifact("ff", "keras")
    data = path.read_bytes()
    damaged = copy_export(path, tmp_path / "g3.keras", data[:3000])
    code, _, err = cli("evaluate", str(damaged), "--episodes", "1")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"g3.keras: damaged Keras file (3000 bytes, expected {len(data)}): export it again" in err, err
    copy_export(path, damaged, data[:3000], old_sidecar=True)
    code, _, err = cli("evaluate", str(damaged), "--episodes", "1")
    assert code == 2 and err.count("\n") == 1, err
    assert "g3.keras: damaged Keras file (not a zip archive" in err and "File not found" not in err, err


@pytest.mark.parametrize("fmt", ["tflite", "keras"])
def test_the_sidecar_records_the_file_and_older_sidecars_still_load(fmt: str, artifact, tmp_path: Path):
    path = artifact("ff", fmt)
    data = path.read_bytes()
    assert metadata(fmt, path)["file"] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    for old_sidecar in (False, True):
        intact = copy_export(path, tmp_path / f"policy{old_sidecar:d}.{fmt}", old_sidecar=old_sidecar)
        code, out, err = cli("evaluate", str(intact), "--episodes", "1", "--json")
        assert code == 0, err
        assert json.loads(out)["episodes"] == 1


# ---------------------------------------------------------------------------- outputs and mismatches


@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
def test_an_output_folder_it_cannot_write_in_is_one_line(fmt: str, checkpoints, immutable_folder: Path):
    output = immutable_folder / ("p" if fmt == "savedmodel" else f"p.{fmt}")
    code, _, err = cli("export", str(checkpoints["ff"]), "--format", fmt, "--output", str(output))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"--output {output}: cannot write it (Operation not permitted)" in err, err
    assert not list(immutable_folder.iterdir())


def test_write_errors_inside_the_writers_name_the_output(checkpoints, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Failures the up-front check cannot see (a disk filling up): TensorFlow's SavedModel writer raises
    tf.errors, not OSError, and tf2onnx's file write is not a conversion failure."""
    import tensorflow as tf

    def denied(model, meta, dest):
        raise tf.errors.PermissionDeniedError(None, None, f"{dest}; Permission denied")

    monkeypatch.setitem(exporting.WRITERS, "savedmodel", denied)
    code, _, err = cli("export", str(checkpoints["ff"]), "--output", str(tmp_path / "sm"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"--output {tmp_path / 'sm'}: cannot write it (" in err, err
    if installed("tf2onnx"):
        import tf2onnx

        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(tf2onnx.convert, "from_function", full)
        output = tmp_path / "p.onnx"
        code, _, err = cli("export", str(checkpoints["ff"]), "--format", "onnx", "--output", str(output))
        assert code == 2 and err.count("\n") == 1, err
        assert f"--output {output}: cannot write it (No space left on device)" in err and "tf2onnx" not in err, err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt", ["tflite"])  # not keras: Keras's own loader refuses .KERAS (refused above)
def test_an_upper_case_suffix_is_accepted(fmt: str, checkpoints, tmp_path: Path):
    output = tmp_path / f"UP.{fmt.upper()}"
    code, _, err = cli("export", str(checkpoints["ff"]), "--format", fmt, "--output", str(output), "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name, f"{output.name}.json"]
    code, out, err = cli("evaluate", str(output), "--episodes", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["episodes"] == 1


def test_force_replaces_only_the_savedmodels_own_entries(checkpoints, tmp_path: Path):
    output = tmp_path / "sm"
    code, _, err = cli("export", str(checkpoints["ff"]), "--output", str(output), "--quiet")
    assert code == 0, err
    (output / "notes.txt").write_text("mine")
    (output / "client").mkdir()
    (output / "client" / "run.py").write_text("print('mine')")
    (output / "variables" / "stale.txt").write_text("from the old SavedModel")
    # TF Serving's warm-up requests live in assets.extra/ beside rdpg's metadata: only the latter is replaced.
    (output / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"requests")
    code, _, err = cli("export", str(checkpoints["rec"]), "--output", str(output), "--force", "--quiet")
    assert code == 0, err
    assert (output / "notes.txt").read_text() == "mine"
    assert (output / "client" / "run.py").read_text() == "print('mine')"
    assert (output / "assets.extra" / "tf_serving_warmup_requests").read_bytes() == b"requests"
    assert sorted(p.name for p in (output / "assets.extra").iterdir()) == ["rdpg_policy.json",
                                                                         "tf_serving_warmup_requests"]
    assert not (output / "variables" / "stale.txt").exists(), "variables/ is the SavedModel's: replaced whole"
    assert metadata("savedmodel", output)["recurrent"] == "lstm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"], "temporary folders left behind"
    code, _, err = cli("evaluate", str(output), "--episodes", "1", "--json")
    assert code == 0, err
    # An assets.extra/ that links to a folder of the user's stays a link, replaced through.
    shutil.move(output / "assets.extra", tmp_path / "shared-extra")
    (output / "assets.extra").symlink_to(tmp_path / "shared-extra")
    code, _, err = cli("export", str(checkpoints["ff"]), "--output", str(output), "--force", "--quiet")
    assert code == 0, err
    assert (output / "assets.extra").is_symlink()
    assert sorted(p.name for p in (tmp_path / "shared-extra").iterdir()) == ["rdpg_policy.json",
                                                                           "tf_serving_warmup_requests"]
    assert metadata("savedmodel", output)["recurrent"] == "none"


def test_a_savedmodel_with_another_exports_metadata_is_refused(artifact, tmp_path: Path):
    """assets.extra/ copied from another run: its inputs, or the environment its metadata names, no longer
    fit the graph; one line naming the file, before any episode."""
    swapped = tmp_path / "swapped"
    shutil.copytree(artifact("ff", "savedmodel"), swapped)
    meta = metadata("savedmodel", artifact("rec", "savedmodel"))
    (swapped / "assets.extra" / "rdpg_policy.json").write_text(json.dumps(meta))
    code, _, err = cli("evaluate", str(swapped), "--episodes", "1")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{swapped}: its inputs are observation, but its metadata" in err, err
    assert "gives observation, prev_action, state_c, state_h: the metadata belongs to another export" in err, err

    meta = metadata("savedmodel", artifact("ff", "savedmodel"))
    meta["observation"]["dim"] = 4
    (swapped / "assets.extra" / "rdpg_policy.json").write_text(json.dumps(meta))
    code, _, err = cli("evaluate", str(swapped), "--episodes", "1")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{swapped}: its policy takes 4 observations and gives 1 action, but Pendulum-v1 has 3 observations" in err


@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
@pytest.mark.parametrize("kind", KINDS)
def test_an_observation_of_the_wrong_width_is_refused_by_the_artifact(kind: str, fmt: str, artifact):
    """The rec policy masks its observation with a gather that takes its columns from any width; every
    runtime must refuse a wider or narrower observation rather than act on it. TFLite is checked with and
    without its default XNNPACK delegate, which runs different kernels."""
    path = artifact(kind, fmt)
    raw = Raw(fmt, path)
    width = raw.meta["observation"]["dim"]
    state = raw.zero_state(2)
    assert raw.run({"observation": np.zeros((2, width), np.float32), **state})["action"].shape == (2, 1)
    runs = [raw.run]
    if fmt == "tflite":
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = tf.lite.Interpreter(str(path), experimental_op_resolver_type=(
                tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
        runner = plain.get_signature_runner("serving_default")
        runs.append(lambda feed: runner(**feed))
    # TFLite's kernels broadcast a width of 1 (see _width_checked): rdpg's own runner refuses it, below.
    wrongs = (width - 1, width + 1, 2 * width, *((1,) if width > 2 and fmt != "tflite" else ()))
    for run in runs:
        for wrong in wrongs:
            with pytest.raises(Exception):  # noqa: B017  (each runtime has its own error type)
                run({"observation": np.zeros((2, wrong), np.float32), **state})
    if fmt == "tflite":
        from rdpg_cli.export import RUNNERS, ExportError, read_metadata

        runner = RUNNERS["tflite"](path, read_metadata(path, "tflite"))
        with pytest.raises(ExportError, match=f"the policy takes {width} components, not 1"):
            runner.step({"observation": np.zeros((2, 1), np.float32), **state})


def test_a_stop_between_the_file_and_its_sidecar_waits_until_both_are_placed(checkpoints, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             command_line_signals):
    """The sidecar was moved into place first, then the file: a Ctrl-C between the two left the old file
    beside the new sidecar (`rdpg evaluate`: "damaged Keras file ... export it again")."""
    output = tmp_path / "p.keras"
    exporting.export_policy(checkpoints["ff"], "keras", output)
    real_replace = exporting.os.replace
    moves: list[str] = []

    def replace_then_ctrl_c(src, dst):
        real_replace(src, dst)
        if Path(dst).parent == tmp_path:  # not the writers' own files
            moves.append(Path(dst).name)
            if len(moves) == 1:  # between the two renames
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(exporting.os, "replace", replace_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        exporting.export_policy(checkpoints["rec"], "keras", output, force=True)
    assert sorted(moves) == ["p.keras", "p.keras.json"]
    meta = json.loads((tmp_path / "p.keras.json").read_text())
    assert meta["file"]["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    assert meta["state"], "the recurrent export's sidecar"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.keras", "p.keras.json"]


def test_a_second_ctrl_c_during_the_clean_up_still_removes_the_temporary_export(checkpoints, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch,
                                                                               command_line_signals):
    """A Ctrl-C while the SavedModel is written, then another while its temporary folder is removed: the
    second cut the removal short and left a `.rdpg-export-PID` folder beside the user's files."""
    output = tmp_path / "savedmodel"
    real_writer, real_rmtree = exporting.WRITERS["savedmodel"], shutil.rmtree
    removals: list[str] = []

    def write_then_ctrl_c(model, meta, path):
        real_writer(model, meta, path)
        signal.raise_signal(signal.SIGINT)

    def ctrl_c_then_rmtree(path, *args, **kwargs):
        if Path(path).name.startswith(".rdpg-export-"):  # the export's own, not a TemporaryDirectory's
            removals.append(Path(path).name)
            signal.raise_signal(signal.SIGINT)
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setitem(exporting.WRITERS, "savedmodel", write_then_ctrl_c)
    monkeypatch.setattr(shutil, "rmtree", ctrl_c_then_rmtree)
    with pytest.raises(KeyboardInterrupt):
        exporting.export_policy(checkpoints["rec"], "savedmodel", output)
    assert len(removals) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_stop_signal_swallowed_on_the_way_still_stops_the_export_before_it_replaces_anything(
        checkpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, command_line_signals):
    """A SIGTERM whose exception was dropped in a finalizer: the export went on, replaced the user's file
    and ended with status 0, as if no stop had been asked for."""
    output = tmp_path / "p.keras"
    exporting.export_policy(checkpoints["ff"], "keras", output)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_writer = exporting.WRITERS["keras"]

    def write_with_a_swallowed_stop(model, meta, path):
        real_writer(model, meta, path)
        drop_a_stop_signal()

    command_lines_hook, swallowed = sys.unraisablehook, []

    def unraisable(report):
        swallowed.append(type(report.exc_value).__name__)
        command_lines_hook(report)

    monkeypatch.setattr(sys, "unraisablehook", unraisable)
    monkeypatch.setitem(exporting.WRITERS, "keras", write_with_a_swallowed_stop)
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        exporting.export_policy(checkpoints["rec"], "keras", output, force=True)
    assert swallowed == ["Interrupted"]  # dropped on the way, as described
    assert "Exception ignored" not in capsys.readouterr().err  # not reported as if it were a bug, either
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporaries, nothing replaced


def test_names_near_the_file_systems_limit_export_and_one_too_long_for_its_sidecar_is_refused(checkpoints,
                                                                                              tmp_path: Path):
    """The temporary names were the output's own plus ``.tmp-PID``: a legal name of 250 bytes ended in a
    traceback (ENAMETOOLONG), and so did a file name that fit but whose sidecar (the name + .json) did not."""
    folder = tmp_path / "x"
    savedmodel = folder / ("a" * 250)
    keras_file = folder / ("k" * 243 + ".keras")  # its sidecar: 254 bytes
    for output, fmt in ((savedmodel, "savedmodel"), (keras_file, "keras")):
        exporting.export_policy(checkpoints["ff"], fmt, output)
        assert metadata(fmt, output)["recurrent"] == "none"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [savedmodel.name, keras_file.name, keras_file.name + ".json"]), "temporaries left behind"
    too_long = folder / ("d" * 247 + ".keras")
    code, _, err = cli("export", str(checkpoints["ff"]), "--format", "keras", "--output", str(too_long))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "the name leaves no room for its sidecar, the name + .json (File name too long)" in err, err
    assert not os.path.lexists(too_long)


@pytest.mark.parametrize("fmt", ["savedmodel", "keras"])
def test_a_symbolic_link_to_nothing_is_not_replaced_without_force(checkpoints, tmp_path: Path, fmt: str):
    """``exists()`` follows the link: a user's link to a file not there yet counted as nothing and was
    replaced by the export without --force."""
    output = tmp_path / ("sm" if fmt == "savedmodel" else "p.keras")
    output.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ExportError, match=r"already exists; use --force|exists and is not a folder"):
        exporting.export_policy(checkpoints["ff"], fmt, output)
    assert output.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_force_replaces_a_savedmodel_through_a_link_to_another_file_system(checkpoints, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """The new SavedModel was written beside the link, so its entries could not be moved into the folder the
    link points to when that lies on another file system ("Invalid cross-device link", every time). Here the
    two file systems are two folders between which the test's os.replace refuses to move anything."""
    import errno

    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    target = there / "sm"
    exporting.export_policy(checkpoints["ff"], "savedmodel", target)
    (target / "notes.txt").write_text("mine")
    link = here / "sm"
    link.symlink_to(target)
    real_replace = os.replace

    def no_moves_across(src, dst):
        sides = {part for path in (src, dst) for part in Path(os.path.realpath(path)).parts if part in ("here",
                                                                                                      "there")}
        if len(sides) > 1:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        real_replace(src, dst)

    monkeypatch.setattr(exporting.os, "replace", no_moves_across)
    exporting.export_policy(checkpoints["rec"], "savedmodel", link, force=True)
    assert link.is_symlink() and metadata("savedmodel", target)["recurrent"] == "lstm"
    assert (target / "notes.txt").read_text() == "mine"
    assert [p.name for p in here.iterdir()] == ["sm"] and [p.name for p in there.iterdir()] == ["sm"]


def _sidecar_text(**action: object) -> str:
    meta = exporting.PolicyMetadata(
        artifact="onnx", env_id="Pendulum-v1", observation_dim=3, observation_indices=None,
        observation_low=[-1.0, -1.0, -8.0], observation_high=[1.0, 1.0, 8.0], action_dim=1, action_low=[-2.0],
        action_high=[2.0], recurrent="none", history="obs", state=[], config_yaml="{}", checkpoint="c.h5",
        env_steps=1)
    data = json.loads(meta.to_json())
    data["action"].update(action)
    return json.dumps(data)


@pytest.mark.parametrize("action, problem", [
    ({"low": [1.0], "high": [-1.0]},
     "action bounds low [1.0], high [-1.0]: each low must be finite and below its high"),
    ({"low": [float("nan")]}, "action bounds low [nan], high [2.0]"),
    ({"high": [2.0, 2.0]}, "action bounds of 1 and 2 values for 1 actions"),
])
def test_a_sidecar_with_edited_action_bounds_is_damaged_metadata(action: dict, problem: str):
    """A client reads the action bounds from the sidecar: inverted, non-finite or mis-sized ones were read as
    they were (rdpg evaluate of the export ran)."""
    exporting.PolicyMetadata.from_json(_sidecar_text(), "p.onnx.json")  # the unedited one reads
    with pytest.raises(ExportError, match="damaged metadata") as raised:
        exporting.PolicyMetadata.from_json(_sidecar_text(**action), "p.onnx.json")
    assert problem in str(raised.value)
