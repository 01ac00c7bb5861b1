"""Fault injection: broken environments, diverging losses, failing disks, SIGKILL at random moments.

Each must end with a clear message, a non-zero exit, no traceback, and the last good checkpoint intact."""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from conftest import TINY, rdpg, rdpg_command

from rdpg_cli.checkpoint import read_checkpoint

TESTS = Path(__file__).parent
FAULTY_ENV = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def faulty_preset(tmp_path: Path, fault: str, fault_step: int) -> Path:
    preset = tmp_path / "faulty.yaml"
    preset.write_text(
        "env:\n  id: faulty_envs:FaultyPendulum-v0\n"
        f"  kwargs: {{fault: {fault}, fault_step: {fault_step}}}\n"
        "action_bounds: {low: [-2.0], high: [2.0]}\n"
        "train: {eval_every: 100000, checkpoint_every: 100, log_every: 100}\n")
    return preset


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A 300-step run (metrics rows at 100, 200, 300), trained once for the tests that damage a copy of it."""
    folder = tmp_path_factory.mktemp("small")
    rdpg("train", "--preset", "pendulum", "--steps", "300", *TINY, "--run-dir", "run", "-q", cwd=folder)
    return folder / "run"


def train_faulty(tmp_path: Path, fault: str, fault_step: int, steps: int) -> subprocess.CompletedProcess:
    """Train on FaultyPendulum with ``fault`` into tmp_path/run, checkpointing every 100 env steps."""
    preset = faulty_preset(tmp_path, fault, fault_step)
    return rdpg("train", "--preset", preset, "--steps", str(steps), *TINY, "--set", "train.eval_every=100000",
                "--set", "train.checkpoint_every=100", "--run-dir", "run", cwd=tmp_path, check=False,
                env=FAULTY_ENV)


def checkpoint_steps(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return int(f.attrs["env_steps"])


@pytest.mark.parametrize(("fault", "words"), [("nan_observation", "non-finite observation"),
                                              ("inf_reward", "non-finite reward"),
                                              ("raise", "the environment raised RuntimeError"),
                                              ("wide_observation", "observation of shape [4], not its "
                                                                   "observation space's [3]"),
                                              ("text_reward", "returned reward bad, not one number"),
                                              ("huge_observation", "returned an observation beyond float32's "
                                                                   "range"),
                                              ("huge_reward", "returned reward 1e+300, beyond float32's range"),
                                              ("none_reward", "returned reward None, not one number"),
                                              ("exit", "the environment called sys.exit(0)")])
def test_broken_environment_stops_cleanly_keeping_last_good_checkpoint(tmp_path, fault, words):
    result = train_faulty(tmp_path, fault, fault_step=350, steps=1000)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and words in error_lines[0] and "step 349" in error_lines[0], result.stderr
    assert checkpoint_steps(tmp_path / "run" / "checkpoint.h5") == 300
    assert (tmp_path / "run" / ".lock").exists()  # the folder this command made stays whole, lock included
    data = read_checkpoint(tmp_path / "run" / "checkpoint.h5")
    assert np.all(np.isfinite(data.replay["observations"])) and np.all(np.isfinite(data.replay["rewards"]))


@pytest.mark.parametrize("checkpoint_every", [50, 300])
def test_an_environment_that_breaks_in_an_evaluation_stops_the_run_cleanly(tmp_path, checkpoint_every):
    """The evaluation environment is another instance: it raises at its 150th step, in the first evaluation
    (env step 100), before the training one would. One line, exit 1, as a raise in a training step."""
    preset = faulty_preset(tmp_path, "raise", 150)
    result = rdpg("train", "--preset", preset, "--steps", "300", *TINY, "--set", "train.eval_every=100",
                  "--set", f"train.checkpoint_every={checkpoint_every}", "--run-dir", "run", cwd=tmp_path,
                  check=False, env=FAULTY_ENV)
    assert result.returncode == 1, result.stderr
    fault = ("error: env step 100: evaluation: the environment raised RuntimeError: simulated crash inside the "
             "environment")
    if checkpoint_every == 300:
        assert result.stderr.strip().splitlines() == [
            f"{fault}; no checkpoint was written yet (train.checkpoint_every: 300)"], result.stderr
        return
    # Env step 100 was due a checkpoint, written after its evaluation: it is written all the same (it used to be
    # lost with the evaluation, and with it the env steps since the last one).
    assert result.stderr.strip().splitlines() == [
        f"{fault}; checkpoint.h5 holds this env step, its evaluation still to run; once the environment is fixed, "
        "resume with: rdpg train --resume run"], result.stderr
    assert checkpoint_steps(tmp_path / "run" / "checkpoint.h5") == 100


def test_an_environment_failing_in_the_summarys_evaluation_says_training_is_complete(tmp_path):
    """A budget that ends between evaluations is evaluated once more for the summary only: training is done
    and checkpointed by then."""
    preset = faulty_preset(tmp_path, "raise", 250)  # the evaluation environment's 250th step: in that last one
    result = rdpg("train", "--preset", preset, "--steps", "150", *TINY, "--set", "train.eval_every=100",
                  "--run-dir", "run", cwd=tmp_path, check=False, env=FAULTY_ENV)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: env step 150: evaluation: the environment raised RuntimeError: simulated crash inside the "
        "environment; training is complete and checkpoint.h5 holds it: only the summary's evaluation failed")
    assert checkpoint_steps(tmp_path / "run" / "checkpoint.h5") == 150


@pytest.mark.parametrize("steps", [300, 100])  # 100: the failed evaluation is the budget's last step
def test_a_run_stopped_by_its_evaluation_environment_resumes_as_if_never_stopped(tmp_path, steps):
    """The checkpoint written at the failed evaluation's step says the evaluation is still to run: the resume
    runs it, writes that step's metrics row and checkpoint, and goes on; everything then equals a run whose
    environment never failed (the checkpoint's weights, replay and training state; metrics.csv)."""
    def preset(folder: Path, marker: Path) -> Path:
        folder.mkdir()
        path = folder / "once.yaml"
        path.write_text("env:\n  id: faulty_envs:FaultyPendulum-v0\n"
                        f"  kwargs: {{fault: raise_once, fault_step: 150, marker: {str(marker)!r}}}\n"
                        "action_bounds: {low: [-2.0], high: [2.0]}\n")
        return path

    args = ["--steps", str(steps), *TINY, "--set", "train.eval_every=100", "--set", "train.checkpoint_every=100",
            "--run-dir", "run"]
    fixed = tmp_path / "fixed"
    fixed.touch()  # this environment has its crash behind it: it never fails
    rdpg("train", "--preset", preset(tmp_path / "whole", fixed), *args, "-q", cwd=tmp_path / "whole",
         env=FAULTY_ENV)
    broken = preset(tmp_path / "stopped", tmp_path / "stopped" / "crashed")
    result = rdpg("train", "--preset", broken, *args, cwd=tmp_path / "stopped", check=False, env=FAULTY_ENV)
    assert result.returncode == 1 and "resume with: rdpg train --resume run" in result.stderr, result.stderr
    assert checkpoint_steps(tmp_path / "stopped" / "run" / "checkpoint.h5") == 100
    rdpg("train", "--resume", "run", "-q", cwd=tmp_path / "stopped", env=FAULTY_ENV)

    whole, stopped = tmp_path / "whole" / "run", tmp_path / "stopped" / "run"
    a, b = read_checkpoint(whole / "checkpoint.h5"), read_checkpoint(stopped / "checkpoint.h5")
    assert a.counters == b.counters and a.counters["env_steps"] == steps
    for name in a.variables:
        assert all(np.array_equal(x, y) for x, y in zip(a.variables[name], b.variables[name], strict=True)), name
    assert all(np.array_equal(a.replay[k], b.replay[k]) for k in a.replay)
    state_a, state_b = json.loads(a.trainer_state), json.loads(b.trainer_state)
    for state in (state_a, state_b):
        del state["wall_seconds"]
    assert state_a == state_b and not state_b["evaluation_pending"]
    rows = [list(csv.DictReader(open(run / "metrics.csv"))) for run in (whole, stopped)]
    assert rows[0] == rows[1] and len(rows[0]) == steps // 100 and all(r["eval/mean_return"] for r in rows[0])
    assert (stopped / "best.h5").is_file()


def test_a_policy_that_fails_in_an_evaluation_due_a_checkpoint_writes_none(tmp_path, monkeypatch):
    """A non-finite action in an evaluation is the policy's failure: the state that produced it must not
    replace the last good checkpoint, even at a step due one."""
    from rdpg_cli import trainer as training
    from rdpg_cli.config import load_config, parse_override
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.errors import PolicyFault, TrainingFault

    overrides = dict(parse_override(text) for text in [*TINY[1::2], "train.eval_every=100",
                                                        "train.checkpoint_every=100"])
    config, spec = resolve_bounds(load_config("pendulum", overrides))
    real_evaluate, evaluations = training.evaluate, []

    def failing_second(*args, **kwargs):
        evaluations.append(1)
        if len(evaluations) == 2:
            raise PolicyFault("evaluation: the policy's action is non-finite ([nan]): its weights diverged")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", failing_second)
    trainer = training.Trainer(config, spec, tmp_path)
    with pytest.raises(TrainingFault, match=r"^env step 200: evaluation: the policy's action is non-finite "
                                            r"\(\[nan\]\): its weights diverged$"):
        trainer.run(300, fresh=True)
    trainer.close()
    assert checkpoint_steps(tmp_path / "checkpoint.h5") == 100


def test_a_one_element_reward_array_is_taken_as_its_element(tmp_path):
    preset = faulty_preset(tmp_path, "array_reward", 1)
    rdpg("train", "--preset", preset, "--steps", "200", *TINY, "--run-dir", "run", "-q", cwd=tmp_path,
         env=FAULTY_ENV)
    assert checkpoint_steps(tmp_path / "run" / "checkpoint.h5") == 200


def test_an_environment_without_a_time_limit_is_refused_up_front(tmp_path):
    """Evaluation plays whole episodes: an environment whose episodes never end would hang the first one (and
    a Ctrl-C with it, which waits for the step to finish)."""
    preset = tmp_path / "endless.yaml"
    preset.write_text("env:\n  id: faulty_envs:EndlessPendulum-v0\naction_bounds: {low: [-2.0], high: [2.0]}\n")
    result = rdpg("train", "--preset", preset, "--steps", "300", *TINY, "--run-dir", "run", cwd=tmp_path,
                  check=False, env=FAULTY_ENV)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"error: {preset}: env.max_episode_steps: faulty_envs:EndlessPendulum-v0 has "
                             "no time limit; set one (an episode length that ends every episode)\n")
    result = rdpg("train", "--preset", preset, "--steps", "300", *TINY, "--set", "env.max_episode_steps=50",
                  "--run-dir", "run", "-q", cwd=tmp_path, env=FAULTY_ENV)
    assert checkpoint_steps(tmp_path / "run" / "checkpoint.h5") == 300


# With a policy delay of 2 and only the critic diverging, the loss turns non-finite in a call that ran a held
# critic-only step with the next actor step: the message names both env steps.
HELD = ("--set", "agent.policy_delay=2", "--set", "agent.actor_lr=1.0e-3")


@pytest.mark.parametrize("extra", [(), HELD], ids=["delay-1", "delay-2-held-steps"])
def test_diverging_losses_stop_cleanly(tmp_path, extra):
    result = rdpg("train", "--preset", "pendulum", "--steps", "1000", *TINY, "--set", "agent.critic_lr=1.0e+30",
                  "--set", "agent.actor_lr=1.0e+30", "--set", "train.checkpoint_every=50", *extra, "--run-dir", "run",
                  cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    warnings, errors = _warnings_apart(result.stderr)
    warned = ["agent.critic_lr"] if extra == HELD else ["agent.actor_lr", "agent.critic_lr"]  # HELD: actor_lr 1e-3
    said = [re.search(r"(agent\.\w+): 1e\+30 is a learning rate of 1 or more", w) for w in warnings]
    assert all(said) and sorted(found[1] for found in said) == warned, warnings
    assert len(errors) == 1, result.stderr
    if extra == HELD:
        assert "in the gradient steps of env steps" in result.stderr
    assert "non-finite" in result.stderr and "learning rate" in result.stderr
    checkpoint = tmp_path / "run" / "checkpoint.h5"
    if not checkpoint.exists():  # never a pointer to a checkpoint that is not there
        assert "checkpoint.h5 keeps" not in result.stderr, result.stderr
    if checkpoint.exists():  # whatever was written is finite
        data = read_checkpoint(checkpoint)
        assert all(np.all(np.isfinite(a)) for arrays in data.variables.values() for a in arrays
                   if a.dtype.kind == "f")


def test_a_run_that_diverges_before_its_first_checkpoint_says_there_is_none(tmp_path):
    result = rdpg("train", "--preset", "pendulum", "--steps", "1000", *TINY, "--set", "agent.critic_lr=1.0e+12",
                  "--set", "agent.actor_lr=1.0e+12", "--set", "train.checkpoint_every=5000", "--run-dir", "run",
                  cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    assert "the loss became non-finite" in result.stderr, result.stderr
    assert not (tmp_path / "run" / "checkpoint.h5").exists()
    assert "no checkpoint was written yet (train.checkpoint_every: 5000)" in result.stderr, result.stderr


def test_diverged_actor_is_one_error_not_a_nan_action_for_the_environment():
    """Finite but huge weights overflow in the actor's forward pass: acting (in training and in evaluation)
    stops with one error naming the actor, without numpy's overflow warnings and before the env sees NaN."""
    import warnings

    from rdpg_cli.agent import Agent
    from rdpg_cli.config import load_config
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.errors import TrainingFault
    from rdpg_cli.evaluation import evaluate
    from rdpg_cli.policy import AgentPolicy

    config, spec = resolve_bounds(load_config("pendulum", {"network.actor_layers": [16],
                                                           "agent.policy_weights": "online"}))  # the actor edited
    agent = Agent(config, spec, seed=0)
    for variable in agent.actor.trainable_variables:
        variable.assign(np.full(variable.shape, 1.0e30, np.float32))
    agent.actor_changed()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainingFault, match=r"^the actor's action is non-finite .*learning rates"):
            AgentPolicy(agent).act(np.ones(3, np.float32))
        with pytest.raises(TrainingFault, match=r"^evaluation: the actor's action is non-finite"):
            evaluate(AgentPolicy(agent), config, episodes=1, seed=0)


def test_evaluation_blames_a_broken_environment_not_the_actor():
    """NaN observations from the evaluation environment are named as the environment's, before any policy
    acts on them."""
    from rdpg_cli.agent import Agent
    from rdpg_cli.config import config_from_dict
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.errors import TrainingFault
    from rdpg_cli.evaluation import evaluate
    from rdpg_cli.policy import AgentPolicy

    config, spec = resolve_bounds(config_from_dict({
        "env": {"id": "faulty_envs:FaultyPendulum-v0", "kwargs": {"fault": "nan_observation", "fault_step": 5}},
        "action_bounds": {"low": [-2.0], "high": [2.0]},
        "network": {"actor_layers": [16], "critic_layers": [16]}}))
    with pytest.raises(TrainingFault, match=r"^evaluation: the environment returned a non-finite observation"):
        evaluate(AgentPolicy(Agent(config, spec, seed=0)), config, episodes=1, seed=0)


@pytest.mark.parametrize("failure", ["nan action", "act raises"])
def test_a_policy_failing_in_an_evaluation_is_the_policys_fault_not_the_environments(failure):
    """The trainer writes a checkpoint due at an evaluation whose environment failed, never one whose policy
    did: the two must be told apart."""
    from rdpg_cli.config import config_from_dict
    from rdpg_cli.errors import PolicyFault, TrainingFault
    from rdpg_cli.evaluation import evaluate

    class Broken:
        def reset(self) -> None:
            pass

        def act(self, observation):
            if failure == "act raises":
                raise TrainingFault("the actor's action is non-finite ([nan]): its weights diverged")
            return np.array([np.nan], np.float32)

    with pytest.raises(PolicyFault, match=r"^evaluation: .*non-finite \(\[nan\]\)"):
        evaluate(Broken(), config_from_dict({"env": {"id": "Pendulum-v1"}}), episodes=1, seed=0)


def test_evaluate_cli_on_a_diverged_checkpoint_is_one_error_line(tmp_path):
    from rdpg_cli.checkpoint import write_checkpoint

    rdpg("train", "--preset", "pendulum", "--steps", "200", *TINY, "--run-dir", "run", cwd=tmp_path)
    data = read_checkpoint(tmp_path / "run" / "checkpoint.h5")
    data.variables["actor"] = [np.full_like(a, 1.0e30) for a in data.variables["actor"]]
    write_checkpoint(tmp_path / "diverged.h5", data)
    result = rdpg("evaluate", "diverged.h5", "--episodes", "1", cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: evaluation: the actor's action is non-finite"), lines


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS])
def test_failing_disk_keeps_previous_checkpoint(tmp_path, monkeypatch, error):
    import h5py as h5

    from rdpg_cli.config import load_config
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.errors import TrainingFault
    from rdpg_cli.trainer import Trainer

    overrides = {"network.actor_layers": [16], "network.critic_layers": [16], "agent.batch_size": 32,
                 "agent.warmup_steps": 50, "agent.warmup_critic": 50, "agent.warmup_actor": 50,
                 "train.eval_every": 100000, "train.checkpoint_every": 100, "train.log_every": 100}
    config, spec = resolve_bounds(load_config("pendulum", overrides))
    trainer = Trainer(config, spec, tmp_path)
    trainer.run(100, fresh=True)
    good = (tmp_path / "checkpoint.h5").read_bytes()
    real_file = h5.File

    def failing_file(name, mode="r", *args, **kwargs):
        if mode == "w":
            raise OSError(error, os.strerror(error))
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5, "File", failing_file)
    with pytest.raises(TrainingFault, match=os.strerror(error)) as caught:
        trainer.run(200, fresh=False)
    assert "checkpoint.h5 keeps the last good state; once it can be written, resume with: rdpg train --resume " \
        in str(caught.value)
    assert (tmp_path / "checkpoint.h5").read_bytes() == good
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no half-written leftovers
    trainer.close()


def _file_size_limit(limit: int) -> str:
    """``rdpg_command`` prelude: no file of the process can grow past ``limit`` bytes."""
    return f"import resource\nresource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))"


@pytest.mark.parametrize(("limit", "first_failure"), [
    (20_000, "checkpoint.h5"),  # the first checkpoint (~37 kB) does not fit
    (1_500, "tensorboard"),     # nor the TensorBoard events (the config's text is their first ~1.3 kB)
])
def test_a_file_size_limit_stops_the_run_in_one_line(tmp_path, limit, first_failure):
    """A real write failure (RLIMIT_FSIZE: the kernel refuses the write, as with a full disk), not a mock: HDF5
    and TensorBoard's writer each fail in their own way; each is one line, exit code 1, with no temporary file
    left behind."""
    proc = subprocess.run(
        rdpg_command("train", "--preset", "pendulum", "--steps", "300", *TINY, "--set", "train.checkpoint_every=100",
                     "--run-dir", "run", "-q", prelude=_file_size_limit(limit)),
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: env step "), lines
    assert "cannot write" in lines[0] and first_failure in lines[0]
    assert "no checkpoint was written yet" in lines[0]
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp" in p.name]


def test_a_run_file_that_cannot_be_written_is_named(tmp_path):
    proc = subprocess.run(
        rdpg_command("train", "--preset", "pendulum", "--steps", "300", *TINY, "--run-dir", "run", "-q",
                     prelude=_file_size_limit(500)),
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == "error: run/config.yaml: cannot write it (File too large)"


@pytest.mark.slow
def test_sigkill_at_random_moments_always_leaves_a_loadable_checkpoint(tmp_path):
    """20 SIGKILLs at random moments (a resume's start: reading the checkpoint, building the agent, cutting the
    run files back; training; checkpoint writes every 25 steps): each time the last checkpoint loads, and the
    next process resumes from it. The resumes are forked from the zygote, TensorFlow imported (conftest.rdpg),
    which kills each at its timeout: the 0.05-3 s after the fork cover what 0.5-5 s after a fresh interpreter's
    start did (its first seconds import TensorFlow, which touches no file), at half the wall time."""
    rng = random.Random(1234)
    args = ["train", "--preset", "pendulum", "--steps", "100000", *TINY, "--set", "train.checkpoint_every=25",
            "--run-dir", "run"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    checkpoint = tmp_path / "run" / "checkpoint.h5"
    proc = subprocess.Popen([sys.executable, "-m", "rdpg_cli", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while checkpoint_steps_safe(checkpoint) <= 0:  # the first process must get as far as a checkpoint
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    time.sleep(rng.uniform(0.5, 3.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    first_steps = last_steps = read_checkpoint(checkpoint).counters["env_steps"]
    # With RDPG_TESTS_FRESH=1 each resume starts a fresh interpreter: the kills wait out its imports too.
    start_up = 5.0 if os.environ.get("RDPG_TESTS_FRESH") == "1" else 0.0
    for _ in range(20):
        with pytest.raises(subprocess.TimeoutExpired):  # killed by SIGKILL at its timeout, mid-run
            rdpg("train", "--resume", "run", cwd=tmp_path, timeout=start_up + rng.uniform(0.05, 3.0))
        data = read_checkpoint(checkpoint)  # loads: complete and consistent
        assert data.counters["env_steps"] >= last_steps
        last_steps = data.counters["env_steps"]
    assert last_steps > first_steps  # some resumes got as far as training and a checkpoint
    rdpg("train", "--resume", "run", "--steps", str(last_steps + 30), "-q", cwd=tmp_path)


def checkpoint_steps_safe(path: Path) -> int:
    try:
        return checkpoint_steps(path)
    except OSError:
        return -1


def test_a_write_failure_while_tensorboard_is_cut_back_on_resume_is_one_line(tmp_path):
    """On resume the events are cut back by rewriting their file (the config's text goes: the session writes
    its own) with TensorFlow's writer, whose errors are not OSError: a failing write there is the same one
    line as anywhere else."""
    rdpg("train", "--preset", "pendulum", "--steps", "150", *TINY, "--set", "train.log_every=10",
         "--run-dir", "run", "-q", cwd=tmp_path)
    (events,) = (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")
    assert events.stat().st_size > 4_000  # 15 rows of scalars: the rewrite cannot fit under the limit below
    proc = subprocess.run(rdpg_command("train", "--resume", "run", "--steps", "250", "-q",
                                       prelude=_file_size_limit(2_000)),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    expected = f"error: env step 150: cannot write {events.relative_to(tmp_path)}"
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert "Traceback" not in proc.stderr
    assert not list(events.parent.glob("*.tmp"))


# ------------------------------------------------------------------------------ reset and step contracts


@pytest.mark.parametrize(("fault", "words"), [
    ("reset_raises", "env step 200: the environment's reset raised RuntimeError: simulated crash in reset"),
    ("reset_without_info", "env step 200: the environment's reset returned a ndarray, not gymnasium's "
                           "(observation, info)"),
])
def test_a_reset_that_breaks_mid_run_stops_it_in_one_line(tmp_path, fault, words):
    """The training environment's second reset (env step 200, its first episode over) breaks."""
    result = train_faulty(tmp_path, fault, fault_step=2, steps=400)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {words}; checkpoint.h5 keeps the last good state"]


def test_the_old_gym_step_api_is_one_line(tmp_path):
    """gymnasium's time-limit wrapper unpacks the step's values before rdpg sees them."""
    preset = faulty_preset(tmp_path, "old_step_api", 2)  # a first step is tried before the run (env.kwargs)
    result = rdpg("train", "--preset", preset, "--steps", "50", *TINY, "--run-dir", "run", cwd=tmp_path,
                  check=False, env=FAULTY_ENV)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr  # gymnasium's own checker warns about the old API first
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: env step 1: the environment raised ValueError: not enough values to unpack (expected 5, got 4); "
        "no checkpoint was written yet (train.checkpoint_every: 300)"]


def test_a_reset_that_raises_in_an_evaluation_is_one_line(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    from rdpg_cli.agent import Agent
    from rdpg_cli.config import config_from_dict
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.errors import TrainingFault
    from rdpg_cli.evaluation import evaluate
    from rdpg_cli.policy import AgentPolicy

    config, spec = resolve_bounds(config_from_dict({
        "env": {"id": "faulty_envs:FaultyPendulum-v0", "kwargs": {"fault": "reset_raises", "fault_step": 2}},
        "action_bounds": {"low": [-2.0], "high": [2.0]},
        "network": {"actor_layers": [16], "critic_layers": [16]}}))
    with pytest.raises(TrainingFault, match=r"^evaluation: the environment's reset raised RuntimeError"):
        evaluate(AgentPolicy(Agent(config, spec, seed=0)), config, episodes=2, seed=0)  # its second reset


# ------------------------------------------------------------------------------------------- --video


def faulty_checkpoint(tmp_path: Path, fault: str, marker: Path | None = None) -> Path:
    preset = faulty_preset(tmp_path, fault, 1)
    if marker is not None:
        preset.write_text(preset.read_text().replace("fault_step: 1}", f"fault_step: 1, marker: '{marker}'}}"))
    rdpg("train", "--preset", preset, "--steps", "100", *TINY, "--run-dir", "run", "-q", cwd=tmp_path,
         env=FAULTY_ENV)
    return tmp_path / "run" / "checkpoint.h5"


def test_a_renderer_that_crashes_is_one_line_and_leaves_no_file(tmp_path):
    """Frames are drawn in a child process (MuJoCo's OpenGL crashed any process holding TensorFlow): a
    renderer that takes its process down is reported, and rdpg itself survives to say so. The video's missing
    folders, made for it, go with its temporary file."""
    pytest.importorskip("imageio")
    checkpoint = faulty_checkpoint(tmp_path, "render_crash")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = rdpg("evaluate", checkpoint, "--episodes", "1", "--video", "new/deeper/v.gif", cwd=tmp_path,
                  check=False, env=FAULTY_ENV)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --video: the renderer of faulty_envs:FaultyPendulum-v0 stopped (killed by SIGSEGV)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no video, no temporary file, no folder


def test_frames_are_drawn_by_another_process_without_tensorflow(tmp_path):
    """MuJoCo's OpenGL under Mesa crashes a process that has loaded TensorFlow (not testable in CI, which has
    no MuJoCo): the environment here refuses to draw beside TensorFlow, and names the process that draws.
    (Into a folder that is not there yet: made, as `rdpg export --output` makes its own.)"""
    pytest.importorskip("imageio")
    marker = tmp_path / "drawn-by"
    checkpoint = faulty_checkpoint(tmp_path, "render_watch", marker=marker)
    result = rdpg("evaluate", checkpoint, "--episodes", "1", "--video", "videos/v.gif", "-q", cwd=tmp_path,
                  env=FAULTY_ENV)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "videos").iterdir()] == ["v.gif"]
    assert (tmp_path / "videos" / "v.gif").read_bytes()[:6] == b"GIF89a"
    assert int(marker.read_text()) != os.getpid()


def test_ctrl_c_during_a_video_leaves_no_file_and_no_process(tmp_path):
    """Ctrl-C reaches the whole process group: rdpg stops, kills the drawing process (which may be blocked in
    a renderer or in writing the file) and removes its temporary file; the child prints nothing."""
    pytest.importorskip("imageio")
    marker = tmp_path / "drawn-by"
    checkpoint = faulty_checkpoint(tmp_path, "render_watch", marker=marker)
    # Ctrl-C as a terminal delivers it, even where the suite itself was started in the background by a shell,
    # which leaves SIGINT ignored for everything it starts.
    process = subprocess.Popen(rdpg_command("evaluate", checkpoint, "--episodes", "20", "--video", "v.gif",
                                            prelude="import signal\nsignal.signal(signal.SIGINT, signal.SIG_DFL)"),
                               cwd=tmp_path, env={**os.environ, **FAULTY_ENV}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not [p.name for p in tmp_path.iterdir() if p.name == "v.gif" or p.name.startswith(".rdpg-video-")]
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)


def test_a_gif_too_large_to_hold_is_refused_before_it_is_played(tmp_path):
    """A GIF keeps its frames until it is written: 50 Pendulum episodes of 201 frames of 500 x 500 would hold
    2.3 GB. Refused at the first frame, with MP4 (written as it goes) named."""
    pytest.importorskip("imageio")
    rdpg("train", "--preset", "pendulum", "--steps", "100", *TINY, "--run-dir", "run", "-q", cwd=tmp_path)
    result = rdpg("evaluate", "run", "--episodes", "50", "--video", "v.gif", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --video v.gif: up to 50 x 201 frames of 500 x 500 are 2.3 GB held in memory until a GIF is "
        "written; give a .mp4 path (written as it goes) or fewer --episodes"]
    assert not [p.name for p in tmp_path.iterdir() if p.name == "v.gif" or p.name.startswith(".rdpg-video-")]


def test_a_frame_that_is_not_an_image_is_one_line(tmp_path):
    pytest.importorskip("imageio")
    checkpoint = faulty_checkpoint(tmp_path, "render_flat")
    result = rdpg("evaluate", checkpoint, "--episodes", "1", "--video", "v.gif", cwd=tmp_path, check=False,
                  env=FAULTY_ENV)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --video: faulty_envs:FaultyPendulum-v0 rendered an array of shape [10], not an image (height x "
        "width x 3)"]
    assert not (tmp_path / "v.gif").exists()


def test_a_video_of_an_environment_that_does_not_repeat_itself_says_so(tmp_path):
    pytest.importorskip("imageio")
    checkpoint = faulty_checkpoint(tmp_path, "unrepeatable")
    result = rdpg("evaluate", checkpoint, "--episodes", "1", "--video", "v.gif", "-q", cwd=tmp_path,
                  check=False, env=FAULTY_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "warning: --video: faulty_envs:FaultyPendulum-v0 did not repeat episode 1 under the same seed and actions "
        "(from step 1 on): the video shows another run of it"]
    assert (tmp_path / "v.gif").read_bytes()[:6] == b"GIF89a"


def _mujoco_renders_here(folder: Path) -> bool:
    """Whether MuJoCo can draw with EGL in a process without TensorFlow (a machine with Mesa or a GPU). Run in
    ``folder``: plain MuJoCo writes its warnings to MUJOCO_LOG.TXT in the working folder."""
    probe = ("import gymnasium as gym; e = gym.make('HalfCheetah-v5', render_mode='rgb_array'); "
             "e.reset(seed=0); assert e.render().std() > 0")
    folder.mkdir(exist_ok=True)
    try:
        return subprocess.run([sys.executable, "-c", probe], env={**os.environ, "MUJOCO_GL": "egl"},
                              capture_output=True, timeout=120, cwd=folder).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_a_mujoco_video_renders_beside_tensorflow(tmp_path):
    """Mesa's OpenGL crashed (SIGSEGV) the first MuJoCo frame of any process that had loaded TensorFlow; the
    frames now come from a child without it. Runs where MuJoCo and EGL are installed (not in CI)."""
    pytest.importorskip("mujoco")
    pytest.importorskip("imageio")
    if not _mujoco_renders_here(tmp_path / "probe"):
        pytest.skip("MuJoCo cannot render with EGL on this machine")
    rdpg("train", "--preset", "halfcheetah", "--steps", "30", "--run-dir", "run", "-q",
         "--set", "env.max_episode_steps=10", "--set", "agent.batch_size=8", "--set", "train.eval_every=1000",
         *[f"--set=agent.{key}=10" for key in ("warmup_steps", "warmup_critic", "warmup_actor")], cwd=tmp_path)
    result = rdpg("evaluate", "run/checkpoint.h5", "--episodes", "1", "--video", "cheetah.gif", "-q",
                  cwd=tmp_path, env={"MUJOCO_GL": "egl"})
    from PIL import Image

    with Image.open(tmp_path / "cheetah.gif") as gif:
        assert gif.n_frames == 11, result.stderr  # the start and 10 steps
        gif.seek(5)
        assert np.asarray(gif.convert("RGB")).std() > 10  # the cheetah on its checkered floor, not a blank frame


def test_a_mujoco_that_cannot_load_its_renderer_is_one_line(tmp_path):
    """MUJOCO_GL naming a library the machine lacks makes ``import mujoco`` itself raise (not ImportError)."""
    pytest.importorskip("mujoco")
    env = {"MUJOCO_GL": "osmesa"}
    if subprocess.run([sys.executable, "-c", "import mujoco"], env={**os.environ, **env},
                      capture_output=True).returncode == 0:
        pytest.skip("OSMesa is installed here")
    result = rdpg("train", "--preset", "halfcheetah", "--steps", "10", cwd=tmp_path, check=False, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "HalfCheetah-v5: MuJoCo cannot start (AttributeError: " in result.stderr
    assert result.stderr.strip().endswith("MUJOCO_GL=osmesa needs its OpenGL library")
    assert not (tmp_path / "runs").exists()


def test_an_observation_space_without_components_is_refused(tmp_path):
    preset = tmp_path / "empty.yaml"
    preset.write_text("env:\n  id: faulty_envs:NoObservation-v0\n")
    result = rdpg("train", "--preset", preset, cwd=tmp_path, check=False, env=FAULTY_ENV)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {preset}: env.id: faulty_envs:NoObservation-v0 has observation space "
                                    "Box([], [], (0,), float32), with no components"), result.stderr


@pytest.mark.parametrize(("log", "damage", "words"), [
    ("metrics.csv", lambda text: text + b"\0" * 4096,  # a power loss's tail
     "metrics.csv: line 5 is not a log row (it starts '\\x00"),
    ("metrics.csv", lambda text: text + b"abc,1,2\n",
     "metrics.csv: line 5 is not a log row (it starts 'abc', not an env step)"),
    ("metrics.csv", lambda text: text + "²,1,2\n".encode(),
     "metrics.csv: line 5 is not a log row (it starts '²', not an env step)"),
    ("timing.csv", lambda text: text + b"\xff\xfe", "timing.csv: not a log rdpg wrote (byte "),
    # The last row (step 300, the checkpoint's: a resume keeps it) cut by a crash in mid-write ...
    ("metrics.csv", lambda text: text[:-60], "metrics.csv: line 4 has "),
    ("timing.csv", lambda text: text.rstrip(b"\r\n"), "timing.csv: line 4 is cut short (no line end)"),
    # ... or zeroed from inside it by a power loss: the fields all there, the last one ending in zeros.
    ("metrics.csv", lambda text: text.rstrip(b"\r\n") + b"\0" * 200, "metrics.csv: line 4 is cut short"),
], ids=["zero-filled tail", "garbage line", "non-ASCII digit", "not text", "last row cut", "last line end cut",
        "last row zeroed from inside"])
def test_a_damaged_log_stops_a_resume_before_it_changes_anything(tmp_path, small_run, log, damage, words):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / log).write_bytes(damage((run / log).read_bytes()))
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "command.txt", "metrics.csv",
                                                           "timing.csv", "checkpoint.h5")}
    result = rdpg("train", "--resume", "run", "--steps", "400", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: run/{words}"), lines
    assert lines[0].endswith("repair or remove it to resume"), lines
    assert {name: (run / name).read_bytes() for name in before} == before


# ------------------------------------------------------------------------------------ your own environment


def test_presets_show_warns_where_the_environment_cannot_be_made_or_fails_and_still_shows_the_preset(tmp_path):
    """`presets show` checks a preset against its environment, as train does; one this machine cannot make (a
    package not installed) or whose own code fails (its close()) stopped the preset from being read: an
    error line, or a traceback."""
    (tmp_path / "needs_envs.py").write_text("import a_simulator_not_installed_here\n")
    (tmp_path / "closing_envs.py").write_text(
        "import gymnasium as gym\n"
        "from gymnasium.envs.classic_control.pendulum import PendulumEnv\n"
        "class BadClose(PendulumEnv):\n"
        "    def close(self):\n"
        "        raise RuntimeError('the renderer would not close')\n"
        "gym.register('BadClose-v0', entry_point=BadClose, max_episode_steps=200)\n")
    for module, env_id, warning in (  # each names the preset's file, as train's error would
            ("needs_envs", "X-v0", "warning: {preset}: env.id: needs_envs:X-v0 needs a package that is not installed"),
            ("closing_envs", "BadClose-v0", "warning: {preset}: closing_envs:BadClose-v0 failed while the preset was "
                                            "checked against it (RuntimeError: the renderer would not close)")):
        preset = tmp_path / f"{module}.yaml"
        warning = warning.format(preset=preset)
        preset.write_text(f"env:\n  id: '{module}:{env_id}'\n")
        result = rdpg("presets", "show", preset, "-q", cwd=tmp_path)
        assert result.stdout == preset.read_text(), result
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(warning), result.stderr


def test_an_environment_module_in_the_working_folder_is_found(tmp_path):
    """``env.id: "my_envs:MyPendulum-v0"`` with my_envs.py beside the preset: the ``rdpg`` command (a script in
    the venv's bin, whose folder, not the working one, starts sys.path) finds it, as ``python -m`` would."""
    work, scripts = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    scripts.mkdir()
    (work / "my_envs.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('MyPendulum-v0', entry_point='gymnasium.envs.classic_control.pendulum:PendulumEnv',\n"
        "             max_episode_steps=50)\n")
    (work / "task.yaml").write_text("name: mine\nenv: {id: 'my_envs:MyPendulum-v0', kwargs: {g: 9.0}}\n")
    (scripts / "rdpg").write_text(  # as pip's console script
        "from rdpg_cli.cli import main\nif __name__ == '__main__':\n    main()\n")
    command = [sys.executable, str(scripts / "rdpg")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(TESTS.parent)}
    result = subprocess.run([*command, "train", "--preset", "task.yaml", "--steps", "120", *TINY,
                             "--set", "env.kwargs.g=5.0", "--run-dir", "run", "-q"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([*command, "evaluate", "run/checkpoint.h5", "--episodes", "1", "--json"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "kwargs:\n    g: 5.0" in (work / "run" / "config.yaml").read_text()


def _set_episode_action_nan(f) -> None:
    actions = f["acting/episode_actions"][...]
    actions[3] = np.nan
    del f["acting/episode_actions"]
    f["acting/episode_actions"] = actions


def _set_replay_action(f) -> None:
    actions = f["replay/actions"][...]
    actions[7] = 100.0
    del f["replay/actions"]
    f["replay/actions"] = actions


@pytest.mark.parametrize(("damage", "words"), [
    # was replayed into the environment and blamed on it (exit 1: "the environment returned a non-finite ...")
    (_set_episode_action_nan, "damaged checkpoint: training state (acting/episode_actions holds nan, outside the "
                              "action bounds [-2] .. [2])"),
    (_set_replay_action, "damaged checkpoint: training state (replay/actions holds 100, outside the action "
                         "bounds [-2] .. [2])"),
    # was taken as a finished run (exit 0: "already at 1000000000000 env steps")
    (lambda f: f.attrs.__setitem__("env_steps", 10**12),
     "damaged checkpoint: training state (trainer_state.env_steps 300 disagrees with the file's env_steps "
     "1000000000000)"),
], ids=["episode action NaN", "replay action outside the bounds", "counters disagree"])
def test_a_damaged_training_state_is_named_before_anything_runs(tmp_path, small_run, damage, words):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    with h5py.File(run / "checkpoint.h5", "r+") as f:
        damage(f)
    def files() -> dict[str, bytes]:  # but .lock, which holds the last rdpg train's process id
        return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}

    before = files()
    result = rdpg("train", "--resume", "run", "--steps", "400", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: run: {words}\n", result.stderr
    assert files() == before


def test_a_resume_refuses_a_folder_whose_config_says_otherwise(tmp_path, small_run):
    """config.yaml edited (hoping to change a setting), or the checkpoint of another run copied in: the resume
    would overwrite the edit or mix two runs' logs. One line naming the keys; nothing changes."""
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    edited = (run / "config.yaml").read_text().replace("- 16", "- 64")
    (run / "config.yaml").write_text(edited)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    result = rdpg("train", "--resume", "run", "--steps", "400", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --resume run: run/config.yaml differs from the settings in checkpoint.h5 (network.actor_layers, "
        "network.critic_layers); a resume continues with the checkpoint's settings and rewrites config.yaml: "
        "undo the edit, or move config.yaml away to resume (settings cannot change on a resume: start a new run "
        "for that)"]
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before
    # Moved away, the file is written again from the checkpoint and the run goes on.
    (run / "config.yaml").rename(tmp_path / "my-edit.yaml")
    rdpg("train", "--resume", "run", "--steps", "400", "-q", cwd=tmp_path)
    assert "- 16" in (run / "config.yaml").read_text() and checkpoint_steps(run / "checkpoint.h5") == 400


@pytest.mark.parametrize(("args", "words"), [
    (["--resume", "run", "--force"],
     "error: --force: a resumed run continues its own files, it replaces none; leave --force out"),
    (["--resume", "run/config.yaml"], "error: run/config.yaml: not an HDF5 file"),
    (["--resume", "run", "--steps", "99999999999999999999"],
     "error: --steps: train.steps: 99999999999999999999 is too large"),
])
def test_resume_arguments_that_cannot_work_are_named(tmp_path, small_run, args, words):
    shutil.copytree(small_run, tmp_path / "run")
    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file() and p.name != ".lock"}

    before = files()
    result = rdpg("train", *args, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(words), lines
    assert files() == before


def test_a_resume_goes_on_to_the_budget_config_yaml_announced(tmp_path, small_run):
    """A session that extends the budget (--steps) writes config.yaml first; stopped before its first checkpoint,
    it leaves the new budget there only: a plain --resume goes on to it."""
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("steps: 300", "steps: 400"))
    rdpg("train", "--resume", "run", "-q", cwd=tmp_path)
    assert checkpoint_steps(run / "checkpoint.h5") == 400


def test_a_resume_refuses_the_checkpoint_of_another_run(tmp_path):
    rdpg("train", "--preset", "pendulum", "--steps", "200", *TINY, "--run-dir", "mine", "-q", cwd=tmp_path)
    rdpg("train", "--preset", "pendulum", "--steps", "200", *TINY, "--seed", "7", "--run-dir", "other", "-q",
         cwd=tmp_path)
    (tmp_path / "mine" / "checkpoint.h5").write_bytes((tmp_path / "other" / "checkpoint.h5").read_bytes())
    result = rdpg("train", "--resume", "mine", "--steps", "300", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert "mine/config.yaml differs from the settings in checkpoint.h5 (train.seed)" in result.stderr


@pytest.mark.parametrize(("module", "source", "words"), [
    ("badsyntax", "def broken(:\n", "env.id: badsyntax:X-v0: importing badsyntax raised SyntaxError: invalid syntax"),
    ("raises", "raise RuntimeError('no licence')\n",
     "env.id: raises:X-v0: importing raises raised RuntimeError: no licence"),
    ("needs", "import nonexistent_pkg_xyz\n",
     "env.id: needs:X-v0 needs a package that is not installed (No module named 'nonexistent_pkg_xyz')"),
    ("missing", None, "env.id: missing:X-v0: no module 'missing' (put missing.py in the folder rdpg runs from, "
                      "or its folder on PYTHONPATH)"),
])
def test_an_environment_module_that_cannot_be_imported_is_named(tmp_path, module, source, words):
    """It used to be blamed on env.kwargs ("cannot be made with {}")."""
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)
    preset = tmp_path / "task.yaml"
    preset.write_text(f"env: {{id: '{module}:X-v0'}}\naction_bounds: {{low: [-1.0], high: [1.0]}}\n")
    result = rdpg("train", "--preset", preset, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {preset}: {words}"), lines


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ("", "RuntimeError('no licence')", "env.id: ctor:Broken-v0's constructor raised RuntimeError: no licence"),
    ("kwargs: {size: 3}", "RuntimeError('no licence')",
     "env.kwargs: ctor:Broken-v0 cannot be made with {'size': 3}: RuntimeError: no licence"),
    ("", "TypeError('bad operand')", "env.id: ctor:Broken-v0's constructor raised TypeError: bad operand"),
])
def test_a_constructor_that_raises_blames_env_kwargs_only_when_there_are_some(tmp_path, kwargs, error, words):
    (tmp_path / "ctor.py").write_text(
        "import gymnasium as gym\n"
        "class Broken(gym.Env):\n"
        "    def __init__(self, **kwargs):\n"
        f"        raise {error}\n"
        "gym.register('Broken-v0', entry_point=Broken, max_episode_steps=10)\n")
    preset = tmp_path / "task.yaml"
    preset.write_text(f"env: {{id: 'ctor:Broken-v0', {kwargs}}}\naction_bounds: {{low: [-1.0], high: [1.0]}}\n")
    result = rdpg("train", "--preset", preset, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {preset}: {words}"), lines  # gymnasium may add words


def test_a_diverged_actor_before_the_first_checkpoint_says_none_was_written(tmp_path):
    result = rdpg("train", "--preset", "pendulum", "--steps", "300", *TINY, "--set", "agent.warmup_steps=50",
                  "--set", "agent.warmup_critic=50", "--set", "agent.warmup_actor=50", "--set",
                  "agent.actor_lr=1.0e+20", "--set", "agent.critic_lr=1.0e+20", "--run-dir", "run", "-q",
                  cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    warnings, errors = _warnings_apart(result.stderr)
    assert len(warnings) == 2 and all("is a learning rate of 1 or more" in w for w in warnings), warnings
    assert errors == [
        "error: env step 50: the actor's action is non-finite ([nan]): its weights diverged; lower the learning "
        "rates; no checkpoint was written yet (train.checkpoint_every: 300)"]


def _warnings_apart(stderr: str) -> tuple[list[str], list[str]]:
    """stderr's lines as (the warnings before the run, the rest): a learning rate of 1 or more is warned of."""
    lines = stderr.strip().splitlines()
    warnings = [line for line in lines if line.startswith("warning: ")]
    return warnings, [line for line in lines if line not in warnings]



@pytest.mark.parametrize(("env_id", "words"), [
    ("FlatAction-v0", "action_bounds: faulty_envs:FlatAction-v0's action dimension 1 has low 1.0 >= high 1.0; "
                      "give action_bounds.low and high"),
    ("HugeAction-v0", "action_bounds: faulty_envs:HugeAction-v0's action dimension 0: low -1e+39 is beyond "
                      "float32's range (±3.4e38), the precision actions are computed in; give action_bounds.low "
                      "and high"),
    ("IntegerAction-v0", "env.id: faulty_envs:IntegerAction-v0 has action space Box(-2, 2, (1,), int64); rdpg "
                         "needs continuous (Box) actions, at least one (a Box of floats)"),
    ("NoAction-v0", "env.id: faulty_envs:NoAction-v0 has action space Box([], [], (0,), float32); rdpg needs "
                    "continuous (Box) actions, at least one"),
])
def test_an_action_space_rdpg_cannot_act_in_is_named_with_the_preset(tmp_path, env_id, words):
    """Bounds taken from the environment were checked as a config of their own ("<config>: action_bounds:
    low 1.0 must be < high 1.0", blaming bounds the user never wrote)."""
    preset = tmp_path / "task.yaml"
    preset.write_text(f"env: {{id: 'faulty_envs:{env_id}'}}\n")
    result = rdpg("train", "--preset", preset, cwd=tmp_path, check=False, env=FAULTY_ENV)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # gymnasium warns too
    assert len(lines) == 1 and lines[0].startswith(f"error: {preset}: {words}"), result.stderr


def test_verbose_shows_the_environments_own_frames_when_it_breaks_a_run(tmp_path):
    """The environment's error is re-raised twice on its way out of `rdpg train` (as a fault, then as the
    run's fault at its env step), each time ``from None``: --verbose showed only rdpg's frames, never the line
    of the user's environment that raised (`rdpg evaluate --verbose` did)."""
    preset = faulty_preset(tmp_path, "raise", 150)
    result = rdpg("train", "--preset", preset, "--steps", "200", *TINY, "--run-dir", "run", "--verbose",
                  cwd=tmp_path, check=False, env=FAULTY_ENV)
    assert result.returncode == 1, result.stderr
    assert 'faulty_envs.py", line' in result.stderr and "RuntimeError: simulated crash" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: env step 149: the environment raised")


def test_a_tensorflow_error_is_quoted_without_its_internals():
    from rdpg_cli.errors import tensorflow_reason

    message = ("runs/x/tensorboard/events.out.tfevents.1.host.2.0.v2; No space left on device "
               "{{function_node __wrapped__FlushSummaryWriter_device_/job:localhost/replica:0/task:0/device:CPU:0}}"
               " [Op:FlushSummaryWriter]\nsecond line")
    assert tensorflow_reason(message) == "runs/x/tensorboard/events.out.tfevents.1.host.2.0.v2; No space left on device"
    assert tensorflow_reason("") == ""


def test_a_float64_action_space_whose_bounds_float32_rounds_outward(tmp_path):
    """[-0.1, 0.1] in float64: float32's 0.1 is 0.10000000149, outside the space. The bounds taken from it are
    moved one float32 step inward, so every action is in the space; and the run's own bounds were refused by
    `rdpg evaluate` / `export` as if the environment had changed."""
    preset = tmp_path / "task.yaml"
    preset.write_text("env: {id: 'faulty_envs:TenthAction-v0'}\n")
    rdpg("train", "--preset", preset, "--steps", "200", *TINY, "--run-dir", "run", "-q", cwd=tmp_path,
         env=FAULTY_ENV)
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    low, high = config["action_bounds"]["low"][0], config["action_bounds"]["high"][0]
    assert -0.1 <= low < -0.0999999 and 0.0999999 < high <= 0.1
    rdpg("evaluate", "run", "--episodes", "1", cwd=tmp_path, env=FAULTY_ENV)
    rdpg("train", "--resume", "run", "--steps", "300", "-q", cwd=tmp_path, env=FAULTY_ENV)


def test_a_float16_action_space_gets_its_actions_in_float16_in_training_and_its_video(tmp_path):
    """rdpg's float32 actions are not in a float16 space (``contains`` says no): an environment that checks
    them failed at its first step, and then in the video's replay."""
    pytest.importorskip("imageio")
    preset = tmp_path / "task.yaml"
    preset.write_text("env: {id: 'faulty_envs:HalfPrecisionAction-v0'}\n")
    rdpg("train", "--preset", preset, "--steps", "200", *TINY, "--run-dir", "run", "-q", cwd=tmp_path,
         env=FAULTY_ENV)
    rdpg("evaluate", "run", "--episodes", "1", "--video", "v.gif", "-q", cwd=tmp_path, env=FAULTY_ENV)
    assert (tmp_path / "v.gif").read_bytes()[:6] == b"GIF89a"


def test_an_environment_that_prints_leaves_evaluate_json_alone_with_a_video_too(tmp_path):
    """stdout of `rdpg evaluate --json` is for its one JSON line: an environment's prints (Python's or a C
    library's on file descriptor 1) came before it, and the output no longer parsed; the video's replay, in a
    process of its own, printed there too."""
    pytest.importorskip("imageio")
    preset = faulty_preset(tmp_path, "prints", 1)
    rdpg("train", "--preset", preset, "--steps", "200", *TINY, "--run-dir", "run", "-q", cwd=tmp_path,
         env=FAULTY_ENV)
    result = rdpg("evaluate", "run", "--episodes", "1", "--json", "--video", "v.gif", cwd=tmp_path, env=FAULTY_ENV)
    assert json.loads(result.stdout)["episodes"] == 1, result.stdout
    # `presets show` makes the environment to check the preset: stdout is for the preset's YAML.
    shown = rdpg("presets", "show", preset, "-q", cwd=tmp_path, env=FAULTY_ENV)
    assert shown.stdout == preset.read_text() and "env says hello" in shown.stderr, shown


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (np.bool_(False), False), (0, False), (1, True), (np.int64(1), True), (np.array([0]), False),
    (0.0, False), (np.float32(1.0), True)])
def test_terminated_and_truncated_may_be_any_one_number_0_or_1(value, expected):
    from rdpg_cli.evaluation import checked_flag

    assert checked_flag(value, "terminated") is expected


@pytest.mark.parametrize(("value", "shown"), [
    (np.array([False, False]), "[False False]"), ([1, [2, 3]], "[1, [2, 3]]"), (None, "None"), ("yes", "yes"),
    (2, "2"), (0.5, "0.5")])
def test_terminated_that_is_not_one_bool_is_a_fault_naming_it(value, shown):
    """bool() raised a traceback for an array of two (a fault of the environment, which must keep the run's
    checkpoint) and guessed for the rest."""
    from rdpg_cli.errors import TrainingFault
    from rdpg_cli.evaluation import checked_flag

    with pytest.raises(TrainingFault, match=re.escape(f"the environment returned terminated {shown}, not one bool")):
        checked_flag(value, "terminated")


def test_an_error_of_the_environment_is_named_as_raised_or_exited():
    from rdpg_cli.evaluation import _failure

    assert _failure(RuntimeError()) == "raised RuntimeError"
    assert _failure(ValueError("bad\nsecond")) == "raised ValueError: bad"
    assert _failure(SystemExit(3)) == "called sys.exit(3)"
