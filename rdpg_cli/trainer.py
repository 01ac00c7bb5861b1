"""The training loop: collect -> learn -> evaluate -> log -> checkpoint, plus the run folder and resume.

Everything that decides what happens next (counters, RNG states, noise state, the episode in progress,
metric accumulators) is saved in the checkpoint, so a resumed run continues bit for bit: the environment
is rebuilt by resetting it with the episode's seed and replaying the episode's executed actions.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rdpg_cli import seeding
from rdpg_cli.agent import Agent
from rdpg_cli.checkpoint import CheckpointData, checked_training_state, write_checkpoint
from rdpg_cli.config import Config
from rdpg_cli.envs import EnvSpec, SelectObservation, make_env
from rdpg_cli.errors import CheckpointError, ConfigError, PolicyFault, TrainingFault, reason, tensorflow_reason
from rdpg_cli.evaluation import EvalResult, checked_observation, checked_reset, checked_step, evaluate
from rdpg_cli.memory import networks_do_not_fit
from rdpg_cli.noise import ExplorationNoise
from rdpg_cli.policy import AgentPolicy, restore_agent
from rdpg_cli.replay import Batch, ReplayBuffer
from rdpg_cli.runs import read_log

# What a write into the run folder can fail with (None: a TensorFlow write error, mapped in _write_scalars).
WRITE_FAILURES = {None, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}

METRIC_COLUMNS = [
    "env_steps", "episodes", "gradient_steps",
    "train/critic_loss", "train/actor_loss", "train/mean_q", "train/out_of_bounds",
    "rollout/episode_return", "rollout/episode_length",
    "eval/mean_return", "eval/std_return", "eval/best_return",
]
# Wall-clock figures differ between two runs of the same seed, so they live apart from metrics.csv,
# which stays bit-for-bit reproducible (and identical across a resume).
TIMING_COLUMNS = ["env_steps", "wall_seconds", "time/steps_per_second", "time/updates_per_second"]
MAX_FUSED_UPDATES = 8  # gradient steps in one compiled call, at most


class Reporter:
    """What the loop tells the user; the CLI supplies a Rich or plain-text one."""

    def start(self, total: int, done: int) -> None: ...
    def update(self, stats: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...

    def warning(self, text: str) -> None:
        """Something about the run's result the user must see, even with --quiet: on stderr, as every other
        warning (a live progress bar redirects stderr above itself)."""
        print(f"warning: {text}", file=sys.stderr, flush=True)


@dataclass
class RunSummary:
    run_dir: Path
    env_steps: int
    wall_seconds: float
    best_eval: float | None
    final_eval: float | None
    stopped_by: str | None = None  # a signal name when interrupted
    files: list[str] = field(default_factory=list)


class EpisodeActions:
    """The executed actions of the episode in progress, oldest first, in a numpy array that doubles as it
    fills. Saved in the checkpoint: replaying them into the environment reset with the episode's seed
    rebuilds its exact state on resume, however small the replay memory (which may have overwritten the
    episode's start)."""

    def __init__(self, action_dim: int):
        self._data = np.zeros((256, action_dim), np.float32)
        self.length = 0

    def clear(self) -> None:
        self.length = 0

    def append(self, action: np.ndarray) -> None:
        if self.length == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self.length] = action
        self.length += 1

    def array(self) -> np.ndarray:
        return self._data[: self.length].copy()

    def load(self, actions: np.ndarray) -> None:
        self._data = np.zeros((max(len(self._data), len(actions)), self._data.shape[1]), np.float32)
        self._data[: len(actions)] = actions
        self.length = len(actions)


class EvaluationEnvironmentFailed(Exception):
    """An evaluation's environment failed (``TrainingFault``'s message): not the agent's failure, so the step's
    checkpoint may still be written."""


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class Trainer:
    def __init__(self, config: Config, spec: EnvSpec, run_dir: Path, reporter: Reporter | None = None,
                 run_eagerly: bool = False):
        self.config = config
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.reporter = reporter or Reporter()
        self.seed = config.train.seed
        import tensorflow as tf

        try:
            self.agent = Agent(config, spec, self.seed, run_eagerly=run_eagerly)
        except tf.errors.ResourceExhaustedError:  # within the memory bound (cli), yet TensorFlow cannot allocate
            raise networks_do_not_fit(config) from None
        state_sizes = tuple(config.network.units for _ in self.agent.initial_state(1)) \
            if config.replay.store_state else ()
        try:
            self.replay = ReplayBuffer(config.replay.size, self.agent.stored_observation_dim, spec.action_dim,
                                       state_sizes)
        except (MemoryError, ValueError) as exc:  # numpy: "array is too big" or "Unable to allocate 1.09 TiB"
            raise ConfigError(f"replay.size: {config.replay.size} transitions do not fit in memory "
                              f"({reason(exc)})") from None
        self.noise = ExplorationNoise(config.agent, (spec.high - spec.low) / 2.0, self.seed)
        self.rng = seeding.generator(self.seed, seeding.REPLAY_SAMPLING)
        self.env = make_env(config)
        self.eval_env = make_env(config)
        self.policy = AgentPolicy(self.agent, exploring=True)

        self.env_steps = 0
        self.episodes = 0
        self.critic_updates = 0
        self.best_eval: float | None = None
        self.last_eval: tuple[float, float] | None = None
        # A checkpoint written before its step's evaluation, which an environment failure stopped: a resume runs
        # that step's evaluation, metrics row and checkpoint first.
        self.evaluation_pending = False
        self.episode_return = 0.0
        self.episode_actions = EpisodeActions(spec.action_dim)
        self.accumulators: dict[str, list[float]] = {}  # name -> [sum, count] since the last row
        self.recent_returns: list[float] = []
        self.stop_requested: str | None = None
        self.wall_seconds = 0.0
        self.observation: np.ndarray | None = None
        self.stored_observation: np.ndarray | None = None  # what the replay keeps of it
        self._session_start: float | None = None
        self._summary_writer = None
        self.last_critic_loss: float | None = None
        # Gradient steps sampled and counted but not yet run: critic-only steps leave the actor alone, so
        # acting does not wait for them; they run in one compiled call with the next step that updates the
        # actor (Agent.train_steps), or before anything reads the agent's state. The same numbers as
        # running each at once; fewer, longer calls are faster (README).
        # (batch, update_actor, update_targets, env step sampled at)
        self.pending_updates: list[tuple[Batch, bool, bool, int]] = []
        # The most steps one call holds: one policy-delay cycle of every env step's steps (1: a call per step),
        # at most MAX_FUSED_UPDATES: each step is written out in the traced graph, and tracing 32 of them took
        # 11 s (gradient_steps of 1000 would trace for minutes).
        self.max_fused_updates = min(config.agent.policy_delay * config.agent.gradient_steps, MAX_FUSED_UPDATES)

    # -- episode handling ----------------------------------------------------------------------------------

    @property
    def episode_length(self) -> int:
        """Env steps of the episode in progress: its record of executed actions holds one per step."""
        return self.episode_actions.length

    def _episode_reset_seed(self) -> int:
        """The reset seed of the episode in progress (a resume rebuilds it from this and its actions)."""
        return seeding.episode_seed(self.seed, seeding.TRAIN_EPISODES, self.episodes)

    def _reset_episode(self) -> None:
        try:
            self.observation = checked_reset(self.env, self._episode_reset_seed())
            self.stored_observation = self._the_stored_observation(self.observation)
        except TrainingFault as exc:
            raise self._fault(str(exc)) from None
        self.policy.reset()
        self.noise.reset()
        self.episode_return = 0.0
        self.episode_actions.clear()

    def _the_stored_observation(self, observation: np.ndarray) -> np.ndarray:
        """What the replay keeps of the observation the environment just returned: the observation itself, or
        for a critic over the whole observation (``network.critic_input``) the whole one behind it, checked
        as the observation is."""
        if not self.agent.full_observation_critic or not isinstance(self.env, SelectObservation):
            return observation
        return checked_observation(self.env.full_observation, self.env.env)

    def _fault(self, what: str, checkpoint_kept: bool = True, resumable: bool = False) -> TrainingFault:
        """The error that stops a run at this env step. ``checkpoint_kept``: the fault cannot have reached
        checkpoint.h5 (a non-finite value is never written; a diverged actor's huge but finite weights may
        have been). ``resumable``: once its cause is fixed (room on the disk), the run can go on."""
        written = (self.run_dir / "checkpoint.h5").exists()
        if not written:
            kept = f"; no checkpoint was written yet (train.checkpoint_every: {self.config.train.checkpoint_every})"
        elif checkpoint_kept:
            kept = "; checkpoint.h5 keeps the last good state"
        else:
            kept = ""
        if resumable and written:
            kept += f"; once it can be written, resume with: rdpg train --resume {shlex.quote(str(self.run_dir))}"
        return TrainingFault(f"env step {self.env_steps}: {what}{kept}")

    # -- one env step --------------------------------------------------------------------------------------

    def _choose_action(self) -> np.ndarray:
        spec = self.spec
        warm = self.env_steps < self.config.agent.warmup_steps
        if warm and not self.agent.recurrent:
            action = self.rng.uniform(spec.low, spec.high).astype(np.float32)
            self.policy.prev_action = action
            return action
        try:
            self.policy.act(self.observation)  # advances the recurrent state even while warming up
        except TrainingFault as exc:  # a diverged actor
            raise self._fault(str(exc), checkpoint_kept=False) from None
        if warm:
            action = self.rng.uniform(spec.low, spec.high).astype(np.float32)
        else:
            noisy = self.policy.last_raw_action + self.noise.sample(self.env_steps)
            action = np.clip(noisy, spec.low, spec.high).astype(np.float32)
        self.policy.prev_action = action  # the history holds the executed action
        return action

    def _env_step(self) -> None:
        state_before = tuple(np.asarray(s)[0] for s in self.policy.state) if self.replay.states else ()
        action = self._choose_action()
        try:
            next_observation, reward, terminated, truncated = checked_step(self.env, action)
            stored_next = self._the_stored_observation(next_observation)
        except TrainingFault as exc:  # a broken environment must not lose the run
            raise self._fault(str(exc)) from None
        self.replay.add(self.stored_observation, action, reward, stored_next, terminated, truncated, state_before)
        self.episode_actions.append(action)
        self.env_steps += 1
        self.episode_return += reward
        self.observation, self.stored_observation = next_observation, stored_next
        if terminated or truncated:
            self.episodes += 1
            self._accumulate("rollout/episode_return", self.episode_return)
            self._accumulate("rollout/episode_length", float(self.episode_length))
            self.recent_returns = [*self.recent_returns[-9:], self.episode_return]
            self._reset_episode()

    def _learn(self) -> None:
        agent_cfg = self.config.agent
        if self.env_steps < agent_cfg.warmup_critic or self.env_steps % agent_cfg.train_interval:
            return
        if self.replay.size < agent_cfg.batch_size:
            return
        for _ in range(agent_cfg.gradient_steps):
            batch = self.replay.sample(self.rng, agent_cfg.batch_size, self.config.replay.sequence_length,
                                       self.config.replay.burn_in)
            # TD3's delayed step, every policy_delay-th: the actor (once past its warm-up) and every target
            # network move; the critics learn at every step.
            delayed = self.critic_updates % agent_cfg.policy_delay == 0
            update_actor = delayed and self.env_steps >= agent_cfg.warmup_actor
            self.pending_updates.append((batch, update_actor, delayed, self.env_steps))
            self.critic_updates += 1
            if len(self.pending_updates) >= self.max_fused_updates:
                self.run_pending_updates()
        if any(update_actor for _, update_actor, _, _ in self.pending_updates):
            self.run_pending_updates()  # the next action needs the new actor

    def run_pending_updates(self) -> None:
        """Run the gradient steps sampled so far in one compiled call (see ``pending_updates``)."""
        if not self.pending_updates:
            return
        batches, actor_flags, target_flags, sampled_at = zip(*self.pending_updates, strict=True)
        self.pending_updates = []
        try:
            results = self.agent.train_steps(batches, actor_flags, target_flags)
        except tf.errors.InvalidArgumentError as exc:
            # check_numerics on a loss (Agent._update) says "<loss> : Tensor had NaN values" (or Inf); any
            # other error is not a learning-rate problem and is raised as it is.
            if "Tensor had NaN" in exc.message or "Tensor had Inf" in exc.message:
                held = f" in the gradient steps of env steps {sampled_at[0]}-{sampled_at[-1]}" \
                    if sampled_at[0] != self.env_steps else ""
                raise self._fault(f"the loss became non-finite (NaN or inf){held}: lower the learning rates") \
                    from None
            raise
        for metrics in results:
            self.last_critic_loss = metrics["critic_loss"]
            for name, value in metrics.items():
                self._accumulate(f"train/{name}", value)

    def _accumulate(self, name: str, value: float) -> None:
        total = self.accumulators.setdefault(name, [0.0, 0.0])
        total[0] += value
        total[1] += 1.0

    def _mean(self, name: str) -> float | None:
        total = self.accumulators.get(name)
        return total[0] / total[1] if total and total[1] else None

    # -- evaluation, logging, checkpoints ------------------------------------------------------------------

    def _run_evaluation(self) -> EvalResult:
        try:
            return evaluate(AgentPolicy(self.agent), self.config, self.config.train.eval_episodes,
                            self.config.train.eval_seed, env=self.eval_env)
        except PolicyFault as exc:  # a diverged actor: the last checkpoint stays the last good state
            raise self._fault(str(exc), checkpoint_kept=False) from None
        except TrainingFault as exc:  # the evaluation's environment: training and its own env are sound
            raise EvaluationEnvironmentFailed(str(exc)) from None

    def _evaluate(self) -> None:
        result = self._run_evaluation()
        self.last_eval = (result.mean_return, result.std_return)
        if self.best_eval is None or result.mean_return > self.best_eval:
            self.best_eval = result.mean_return
            self._write_checkpoint(self.run_dir / "best.h5", with_replay=False)
        self._tensorboard_evaluation()

    def _write_row(self, metrics_file, timing_file, since: tuple[float, int, int], closing: bool = False) -> None:
        """One row of metrics.csv (means since the previous row) and timing.csv (rates since then). A closing
        row (a session's end between rows) leaves the means running, as the checkpoint saved them."""
        started, steps_at_start, updates_at_start = since
        row = {
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "gradient_steps": self.critic_updates,
            "eval/mean_return": _fmt(self.last_eval[0]) if self.last_eval else "",
            "eval/std_return": _fmt(self.last_eval[1]) if self.last_eval else "",
            "eval/best_return": _fmt(self.best_eval),
        }
        for name in METRIC_COLUMNS:
            if name not in row:
                row[name] = _fmt(self._mean(name))
        csv.DictWriter(metrics_file, METRIC_COLUMNS).writerow(row)
        metrics_file.flush()
        elapsed = max(time.perf_counter() - started, 1e-9)
        timing = {
            "env_steps": self.env_steps,
            "wall_seconds": f"{self.elapsed_wall():.3f}",
            "time/steps_per_second": f"{(self.env_steps - steps_at_start) / elapsed:.2f}",
            "time/updates_per_second": f"{(self.critic_updates - updates_at_start) / elapsed:.2f}",
        }
        csv.DictWriter(timing_file, TIMING_COLUMNS).writerow(timing)
        timing_file.flush()
        self._tensorboard(row, timing)
        if not closing:
            self.accumulators = {}

    def _summaries(self):
        """The TensorBoard writer, opened on first use (with the config as text)."""
        import tensorflow as tf

        if self._summary_writer is None:
            self._summary_writer = tf.summary.create_file_writer(str(self.run_dir / "tensorboard"))
            with self._summary_writer.as_default():
                tf.summary.text("config", f"```\n{self.config.to_yaml()}\n```", step=0)
        return self._summary_writer

    def _write_scalars(self, scalars: list[tuple[str, float]]) -> None:
        """Scalars at this env step into the TensorBoard events, flushed. TensorFlow reports a write it
        cannot make (a full disk) as its own error, not an OSError: turned into one here."""
        import tensorflow as tf

        try:
            with self._summaries().as_default():
                for name, value in scalars:
                    tf.summary.scalar(name, value, step=self.env_steps)
            self._summary_writer.flush()
        except tf.errors.OpError as exc:
            raise OSError(None, tensorflow_reason(exc.message), str(self.run_dir / "tensorboard")) from None

    def _tensorboard(self, row: dict[str, Any], timing: dict[str, Any]) -> None:
        # metrics.csv repeats the latest evaluation on every row; TensorBoard gets each evaluation once, at
        # the step it ran (_tensorboard_evaluation).
        self._write_scalars([(name, float(value)) for name, value in [*row.items(), *timing.items()]
                             if "/" in name and not name.startswith("eval/") and value not in ("", None)])

    def _tensorboard_evaluation(self) -> None:
        mean, std = self.last_eval
        self._write_scalars([("eval/mean_return", float(mean)), ("eval/std_return", float(std)),
                             ("eval/best_return", float(self.best_eval))])

    def trainer_state(self) -> dict[str, Any]:
        return {
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "critic_updates": self.critic_updates,
            "best_eval": self.best_eval,
            "last_eval": list(self.last_eval) if self.last_eval else None,
            "episode_return": self.episode_return,
            "episode_length": self.episode_length,
            "accumulators": self.accumulators,
            "recent_returns": self.recent_returns,
            "rng": self.rng.bit_generator.state,
            "wall_seconds": self.elapsed_wall(),
            "evaluation_pending": self.evaluation_pending,
        }

    def elapsed_wall(self) -> float:
        """Training wall time over every session of this run (resumes add up)."""
        return self.wall_seconds + (time.perf_counter() - self._session_start if self._session_start else 0.0)

    def checkpoint_data(self, with_replay: bool) -> CheckpointData:
        self.run_pending_updates()  # the state holds every gradient step the counters count
        groups = self.agent.variable_groups()
        acting = {f"state_{i}": np.asarray(s) for i, s in enumerate(self.policy.state)}
        acting["prev_action"] = np.asarray(self.policy.prev_action)
        acting["episode_actions"] = self.episode_actions.array()
        if self.observation is not None:
            acting["observation"] = np.asarray(self.observation)
        return CheckpointData(
            config_yaml=self.config.to_yaml(),
            env_id=self.spec.env_id,
            observation_dim=self.spec.observation_dim,
            full_observation_dim=self.spec.full_observation_dim,
            action_dim=self.spec.action_dim,
            low=self.spec.low,
            high=self.spec.high,
            counters={"env_steps": self.env_steps, "gradient_steps": self.critic_updates,
                      "episodes": self.episodes},
            variables={name: [np.asarray(v.numpy()) for v in vs] for name, vs in groups.items()},
            variable_names={name: [getattr(v, "path", v.name) for v in vs] for name, vs in groups.items()},
            trainer_state=json.dumps(self.trainer_state()),
            noise_state=self.noise.state_json(),
            acting=acting,
            replay=self.replay.state_dict() if with_replay else None,
        )

    def _write_checkpoint(self, path: Path, with_replay: bool) -> None:
        data = self.checkpoint_data(with_replay)
        poisoned = [name for name, arrays in data.variables.items()
                    if any(a.dtype.kind == "f" and not np.all(np.isfinite(a)) for a in arrays)]
        if poisoned:
            # Never replace a good checkpoint with a poisoned one.
            raise TrainingFault(
                f"env step {self.env_steps}: non-finite values in {poisoned[0]} (diverged: lower the learning "
                f"rates); {path.name} keeps the last good state")
        try:
            write_checkpoint(path, data)
        except OSError as exc:  # a full disk, a file-size limit: the file it would have replaced is intact
            raise self._fault(f"cannot write {path} ({exc.strerror or exc})", resumable=True) from None

    def save(self) -> Path:
        path = self.run_dir / "checkpoint.h5"
        self._write_checkpoint(path, with_replay=self.config.train.save_replay)
        return path

    # -- resume --------------------------------------------------------------------------------------------

    def restore(self, data: CheckpointData, source: str) -> None:
        """Continue from a checkpoint. The weights are checked where they are read (``restore_agent``); the
        training state (counters, random generators, noise, replay memory, the episode in progress) here:
        whatever does not fit is a damaged checkpoint, reported in one line."""
        restore_agent(self.agent, data, source)
        try:
            state, acting, episode_actions = self._restore_training_state(data)
        except CheckpointError as exc:
            if str(exc).startswith(source):
                raise
            raise CheckpointError(f"{source}: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0][:120]
            raise CheckpointError(f"{source}: damaged checkpoint: training state ({what})") from None
        if data.replay is None:
            self.reporter.warning(
                "the checkpoint holds no replay memory (train.save_replay: false, or a best.h5 copied as "
                "checkpoint.h5): resuming with an empty one and a fresh episode, so this run will not match an "
                "uninterrupted one")
            self.accumulators = {}  # loss sums from before the file was saved (a best.h5 holds some): not this run's
            self._reset_episode()
            return
        # Rebuild the environment: reset with this episode's seed, replay the executed actions.
        try:
            observation = checked_reset(self.env, self._episode_reset_seed())
            for action in episode_actions:
                observation, *_ = checked_step(self.env, action)
        except TrainingFault as exc:
            raise TrainingFault(f"{source}: replaying the episode in progress: {exc}") from None
        saved = data.acting.get("observation")
        if saved is not None and not np.array_equal(saved, observation):
            raise CheckpointError(
                f"{source}: the environment did not replay to the saved state (it is not deterministic "
                "given its seed), so this run cannot resume exactly")
        self.observation = observation
        self.stored_observation = self._the_stored_observation(observation)
        self.episode_return = state[0]
        self.episode_actions.load(episode_actions)
        self.policy.state, self.policy.prev_action = acting

    def _restore_training_state(self, data: CheckpointData) -> tuple[tuple[float, int], tuple, np.ndarray]:
        """Counters, generators, noise and replay memory from the checkpoint; the episode in progress's
        return, length and acting state, checked here and applied once the environment has replayed it."""
        state = checked_training_state(data)
        self.env_steps = int(state["env_steps"])
        self.episodes = int(state["episodes"])
        self.critic_updates = int(state["critic_updates"])
        self.best_eval = state["best_eval"]
        self.last_eval = tuple(state["last_eval"]) if state["last_eval"] else None
        self.accumulators = state["accumulators"]
        # Files from before the key: none had an evaluation left to run.
        self.evaluation_pending = bool(state.get("evaluation_pending", False))
        self.recent_returns = state["recent_returns"]
        self.rng.bit_generator.state = state["rng"]
        self.wall_seconds = float(state.get("wall_seconds", 0.0))
        self.noise.load_state_json(data.noise_state)
        episode = (float(state["episode_return"]), int(state["episode_length"]))
        if data.replay is None:
            return episode, (), np.zeros((0, self.spec.action_dim), np.float32)
        self.replay.load_state_dict(data.replay)
        acting = (tuple(data.acting[f"state_{i}"] for i in range(len(self.agent.initial_state(1)))),
                  np.asarray(data.acting["prev_action"], np.float32))
        if "episode_actions" in data.acting:
            episode_actions = np.asarray(data.acting["episode_actions"], np.float32)
        else:  # a checkpoint from before the episode record: the replay memory holds the episode, or says it does not
            episode_actions = self.replay.current_episode_actions()
        if episode_actions.shape != (episode[1], self.spec.action_dim):
            raise ValueError(f"acting/episode_actions holds {list(episode_actions.shape)} values, expected "
                             f"{[episode[1], self.spec.action_dim]} (the episode in progress)")
        # Both hold executed actions, clipped to the bounds: anything else is damage (a NaN here was replayed
        # into the environment and blamed on it).
        for name, actions in (("replay/actions", self.replay.actions[:self.replay.size]),
                              ("acting/episode_actions", episode_actions)):
            outside = ~((actions >= self.spec.low) & (actions <= self.spec.high))  # NaN included
            if outside.any():
                value = actions[np.nonzero(outside)][0]
                raise ValueError(f"{name} holds {value:g}, outside the action bounds "
                                 f"[{', '.join(f'{v:g}' for v in self.spec.low)}] .. "
                                 f"[{', '.join(f'{v:g}' for v in self.spec.high)}]")
        return episode, acting, episode_actions

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self, total_steps: int, fresh: bool) -> RunSummary:
        """Train until ``total_steps`` env steps or a stop request. A file the run cannot write (a full disk,
        a file-size limit, a folder made read-only) stops it as a TrainingFault: one line, not a traceback."""
        try:
            return self._run(total_steps, fresh)
        except OSError as exc:
            if exc.errno not in WRITE_FAILURES:  # not a file the run writes (stdout's failures are StdoutFailed)
                raise
            where = exc.filename or self.run_dir
            raise self._fault(f"cannot write {where} ({exc.strerror or exc})", resumable=True) from None

    def _run(self, total_steps: int, fresh: bool) -> RunSummary:
        if fresh:
            self._reset_episode()
        metrics_path = self.run_dir / "metrics.csv"
        timing_path = self.run_dir / "timing.csv"
        _truncate_csv(metrics_path, METRIC_COLUMNS, self.env_steps, self.config.train.log_every)
        _truncate_csv(timing_path, TIMING_COLUMNS, self.env_steps, self.config.train.log_every)
        _truncate_tensorboard(self.run_dir / "tensorboard", self.env_steps, self.config.train.log_every)
        self._write_scalars([])  # opens the events with the config's text, which the cut above dropped
        started = self._session_start = time.perf_counter()
        steps_at_start = self.env_steps
        self.reporter.start(total_steps, self.env_steps)
        try:
            row_clock = self._loop(total_steps, metrics_path, timing_path, started, steps_at_start)
        finally:
            self.reporter.finish()
        if self.stop_requested is not None:
            self.save()
        if self.env_steps % self.config.train.log_every and self.env_steps > 0:
            # The session ended between rows: a closing row, so that the last steps and the last evaluation
            # are in metrics.csv (a run shorter than log_every has one at all). Written after the checkpoint and
            # leaving the means running: a resume drops it (_truncate_csv) and goes on as if it never was.
            with open(metrics_path, "a", newline="") as metrics_file, open(timing_path, "a", newline="") as timing:
                self._write_row(metrics_file, timing, row_clock, closing=True)
        final_eval = self.last_eval[0] if self.last_eval else None
        if self.env_steps % self.config.train.eval_every and self.stop_requested is None:
            # The budget ended between evaluations: evaluate once more for the summary only, leaving the
            # run's state alone so that a resumed run stays identical to an uninterrupted one.
            try:
                final_eval = self._run_evaluation().mean_return
            except EvaluationEnvironmentFailed as failed:
                raise TrainingFault(f"env step {self.env_steps}: {failed}; training is complete and checkpoint.h5 "
                                    "holds it: only the summary's evaluation failed") from None
        self.wall_seconds = self.elapsed_wall()
        self._session_start = None
        files = sorted(p.name for p in self.run_dir.iterdir() if not p.name.startswith("."))
        return RunSummary(
            run_dir=self.run_dir, env_steps=self.env_steps, wall_seconds=self.wall_seconds,
            best_eval=self.best_eval, final_eval=final_eval,
            # a request that came once the budget was reached stopped nothing: the run is complete
            stopped_by=self.stop_requested if self.env_steps < total_steps else None, files=files)

    def _loop(self, total_steps: int, metrics_path: Path, timing_path: Path, started: float,
              steps_at_start: int) -> tuple[float, int, int]:
        """Step, learn, evaluate, log and save until the budget or a stop; the clock of the last row."""
        row_clock = (started, steps_at_start, self.critic_updates)
        updates_at_start = self.critic_updates
        last_report = 0.0
        with open(metrics_path, "a", newline="") as metrics_file, open(timing_path, "a", newline="") as timing:
            if self.evaluation_pending:  # the step a failed evaluation stopped at (checkpointed): its tail again
                row_clock = self._step_tail(total_steps, metrics_file, timing, row_clock)
            while self.env_steps < total_steps and self.stop_requested is None:
                self._env_step()
                self._learn()
                row_clock = self._step_tail(total_steps, metrics_file, timing, row_clock)
                now = time.perf_counter()
                if now - last_report > 0.25 or self.env_steps == total_steps:
                    last_report = now
                    self.reporter.update(self._stats(now - started, steps_at_start, updates_at_start))
        return row_clock

    def _step_tail(self, total_steps: int, metrics_file, timing_file, row_clock: tuple[float, int, int]
                   ) -> tuple[float, int, int]:
        """What an env step ends with, in this order: the evaluation, the metrics row, the checkpoint (each
        where due); the clock of the last row."""
        cfg = self.config.train
        evaluate_now = self.env_steps % cfg.eval_every == 0
        log_now = self.env_steps % cfg.log_every == 0
        save_now = self.env_steps % cfg.checkpoint_every == 0 or self.env_steps == total_steps
        if evaluate_now or log_now or save_now:
            self.run_pending_updates()  # evaluation, metrics.csv and checkpoints see every step
        if evaluate_now:
            try:
                self._evaluate()
            except EvaluationEnvironmentFailed as failed:
                if not save_now:
                    raise self._fault(str(failed)) from None
                # The checkpoint this step is due is written all the same, before its evaluation and row, and
                # says so: a resume runs the evaluation, the row and the checkpoint again, as an uninterrupted
                # run would have; otherwise the run's last checkpoint_every env steps would be lost with it.
                self.evaluation_pending = True
                self.save()
                raise TrainingFault(
                    f"env step {self.env_steps}: {failed}; checkpoint.h5 holds this env step, its evaluation still "
                    "to run; once the environment is fixed, resume with: rdpg train --resume "
                    f"{shlex.quote(str(self.run_dir))}") from None
            self.evaluation_pending = False
        if log_now:
            self._write_row(metrics_file, timing_file, row_clock)
            row_clock = (time.perf_counter(), self.env_steps, self.critic_updates)
        if save_now:
            self.save()
        return row_clock

    def _stats(self, elapsed: float, steps_at_start: int, updates_at_start: int) -> dict[str, Any]:
        """What the progress display shows; both rates over this session (a resumed run's earlier steps and
        updates are not this session's work)."""
        return {
            "env_steps": self.env_steps,
            "steps_per_second": (self.env_steps - steps_at_start) / max(elapsed, 1e-9),
            "updates_per_second": (self.critic_updates - updates_at_start) / max(elapsed, 1e-9),
            "episode_return": float(np.mean(self.recent_returns)) if self.recent_returns else None,
            "last_eval": self.last_eval[0] if self.last_eval else None,
            "best_eval": self.best_eval,
            "critic_loss": self.last_critic_loss,  # the latest step run's: row means reset at every row
            "updates": self.critic_updates,
        }

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()
        if self._summary_writer is not None:
            import tensorflow as tf

            try:
                self._summary_writer.close()
            except tf.errors.OpError:  # a full disk: the run's fault is being reported already
                pass


def _closing_row(step: int, up_to_step: int, log_every: int) -> bool:
    """Whether what was logged at ``step`` is the closing row of the session that saved at ``up_to_step``
    (written there because the session ended off the ``log_every`` grid; a resume drops it)."""
    return step == up_to_step and up_to_step % log_every != 0


def _truncate_csv(path: Path, columns: list[str], up_to_step: int, log_every: int) -> None:
    """Keep the header and the rows up to ``up_to_step``: rows written after the checkpoint a run resumes
    from are dropped, and so is the closing row of the session that wrote it (at ``up_to_step``, off the
    ``log_every`` grid), so the resumed file matches an uninterrupted one."""
    if not path.exists():
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(columns)
        return
    rows = read_log(path)
    kept = [columns] + [r for r in rows[1:]
                        if r and int(r[0]) <= up_to_step and not _closing_row(int(r[0]), up_to_step, log_every)]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)


def _truncate_tensorboard(folder: Path, up_to_step: int, log_every: int) -> None:
    """What ``_truncate_csv`` does for metrics.csv, for the TensorBoard events a resumed run continues: the
    points written after the checkpoint (a run killed or stopped after it) are dropped, so each scalar has
    one point per step across sessions; so are the closing row's points at ``up_to_step`` off the log grid
    (evaluations there stay) and the config text, which the resumed session writes again."""
    if not folder.is_dir():
        return
    import tensorflow as tf
    from tensorflow.core.util.event_pb2 import Event

    def kept(event: Event) -> bool:
        tags = [value.tag for value in event.summary.value]
        if not tags:
            return True  # the file's version record, and the like
        if "config" in tags or event.step > up_to_step:
            return False
        return not _closing_row(event.step, up_to_step, log_every) or all(tag.startswith("eval/") for tag in tags)

    for path in sorted(p for p in folder.glob("events.out.tfevents.*") if not p.name.endswith(".tmp")):
        tmp = path.with_name(path.name + ".tmp")
        records = []
        try:
            try:
                for record in tf.data.TFRecordDataset(str(path)):
                    records.append(record.numpy())
            except tf.errors.DataLossError:  # the last record of a killed process, cut short: dropped
                pass
            keep = [r for r in records if kept(Event.FromString(r))]
            if len(keep) == len(records) and path.stat().st_size == sum(len(r) + 16 for r in records):
                continue  # nothing to drop, and no cut-short record at the end
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for record in keep:
                    writer.write(record)
        except tf.errors.OpError as exc:  # a full disk, an unreadable file: TensorFlow's errors, not OSError
            tmp.unlink(missing_ok=True)
            raise OSError(None, exc.message.splitlines()[0], str(path)) from None
        os.replace(tmp, path)
