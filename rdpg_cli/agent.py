"""The agent: actor, critic(s), their targets and optimizers, acting, and one compiled update.

One update path serves DDPG and RDPG: a batch is always ``[batch, window]`` with ``window = burn_in +
sequence_length``; feed-forward is the case ``burn_in = 0, sequence_length = 1`` with an empty state.
Bookkeeping (when to update the actor, counters) stays in Python; the maths runs in one ``tf.function``
per sequence of steps the trainer hands over at once (``train_steps``: e.g. a critic-only step then a step
with the actor), each traced once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from rdpg_cli import losses, seeding
from rdpg_cli.config import Config
from rdpg_cli.envs import EnvSpec
from rdpg_cli.networks import Actor, Critic, State, history_dim, make_history
from rdpg_cli.optim import FusedAdam
from rdpg_cli.replay import Batch


METRICS_CRITIC_ONLY = ("critic_loss", "mean_q")
METRICS_FULL = (*METRICS_CRITIC_ONLY, "actor_loss", "out_of_bounds")


def metric_names(update_actor: bool) -> tuple[str, ...]:
    """The metrics a train step returns, in the order of its flat metrics tensor."""
    return METRICS_FULL if update_actor else METRICS_CRITIC_ONLY


def step_name(update_actor: bool, update_targets: bool) -> str:
    """A gradient step's kind, as ``Agent.tracing_counts`` names it."""
    return ("full" if update_actor else "critic-only") + ("" if update_targets else "-no-targets")


SCALAR_FIELDS = (4, 5, 6)  # rewards, terminated, valid: one column each in a packed batch


def batch_field_sizes(observation_dim: int, action_dim: int) -> list[int]:
    """Columns of each ``Batch`` array (without ``start_state``) in a packed batch, in field order."""
    return [observation_dim, observation_dim, action_dim, action_dim, 1, 1, 1]


def pack_batch(batch: Batch) -> np.ndarray:
    """The batch's arrays side by side in one float32 ``[batch, window, columns]`` array."""
    b, w = batch.rewards.shape
    parts = [a if a.ndim == 3 else a.reshape(b, w, 1) for a in batch[:7]]
    return np.concatenate(parts, axis=-1, dtype=np.float32)


def call_graph(function, flat_inputs: list[tf.Tensor]):
    """Run a traced graph on its inputs, already flat and in signature order. ``_call_flat`` skips binding
    them to the Python signature again (~80 µs a call here, 2 % of a feed-forward update); the public
    call, with the same numbers, is the fallback should that private method go away."""
    call_flat = getattr(function, "_call_flat", None)
    if call_flat is None:
        return function(*flat_inputs[:1], tuple(flat_inputs[1:]))
    return call_flat(flat_inputs, function.captured_inputs)


class Agent:
    def __init__(self, config: Config, spec: EnvSpec, seed: int, run_eagerly: bool = False):
        self.config = config
        self.spec = spec
        self.seed = int(seed)
        agent = config.agent
        net = config.network
        seeding.seed_networks(self.seed)

        self.recurrent = config.recurrent
        self.burn_in = config.replay.burn_in
        self.sequence_length = config.replay.sequence_length
        self.low = tf.constant(spec.low, tf.float32)
        self.high = tf.constant(spec.high, tf.float32)
        self.half_range = (self.high - self.low) / 2.0
        squash = agent.bounding == "tanh"

        def actor() -> Actor:
            return Actor(net, spec.action_dim, spec.low, spec.high, squash)

        n_critics = 2 if agent.twin_critics else 1
        # An asymmetric critic (Pinto et al. 2018) reads the environment's whole observation, feed-forward: it
        # is Markov there, so the critic learns as fast as on the fully observed task, while the actor still
        # acts on the selected components through its recurrent layer. The replay then stores whole
        # observations and the update selects the actor's components from them.
        self.full_observation_critic = net.critic_input == "full_observation"
        critic_net = dataclasses.replace(net, recurrent="none", history="obs") if self.full_observation_critic \
            else net
        indices = config.env.observation_indices
        self.actor_indices = list(indices) if self.full_observation_critic and indices is not None else None
        self.stored_observation_dim = spec.full_observation_dim if self.full_observation_critic \
            else spec.observation_dim

        self.actor, self.target_actor = actor(), actor()
        self.critics = [Critic(critic_net) for _ in range(n_critics)]
        self.target_critics = [Critic(critic_net) for _ in range(n_critics)]

        actor_history = tf.zeros([1, 1, history_dim(net, spec.observation_dim, spec.action_dim)])
        critic_history = tf.zeros([1, 1, history_dim(critic_net, self.stored_observation_dim, spec.action_dim)])
        act = tf.zeros([1, 1, spec.action_dim])
        for model in [self.actor, self.target_actor]:
            model(actor_history, model.initial_state(1))
        for model in [*self.critics, *self.target_critics]:
            model(critic_history, act, model.initial_state(1))
        if not squash:
            # A linear output starts at the middle of the bounds, as tanh(0) does for a squashed one: from 0, an
            # action range such as [0, 10] started at its lower bound. (Symmetric bounds: 0, as before.)
            self.actor.out.bias.assign((spec.high + spec.low) / 2.0)
        losses.hard_update(self.target_actor.trainable_variables, self.actor.trainable_variables)
        for target, critic in zip(self.target_critics, self.critics, strict=True):
            losses.hard_update(target.trainable_variables, critic.trainable_variables)

        self.actor_variables = list(self.actor.trainable_variables)
        self.critic_variables = [v for c in self.critics for v in c.trainable_variables]
        self.actor_optimizer = FusedAdam(agent.actor_lr, self.actor_variables, name="actor_adam")
        self.critic_optimizer = FusedAdam(agent.critic_lr, self.critic_variables, name="critic_adam")

        # Counters the compiled step reads; Python keeps copies for bookkeeping and checkpoints.
        self.gradient_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="gradient_steps")

        # XLA (jit_compile) was measured (bench/xla.py): slower for the feed-forward step on this CPU, with
        # Eigen's, XNNPACK's or oneDNN's matmuls, and tens of seconds of compilation for an unrolled recurrent
        # one; plain graphs it is. Traced without AutoGraph: the
        # step's Python control flow is all on Python values (the one tensor condition is a tf.cond), and
        # AutoGraph's source conversion was most of the first step's tracing (a tiny `rdpg train` 11 -> 7 s).
        self._wrap: Callable = (lambda f: f) if run_eagerly else (lambda f: tf.function(f, autograph=False))
        self._act = self._wrap(self._act_impl)
        self._act_exploring = self._wrap(lambda *a: self._act_impl(*a, exploring=True))
        self.run_eagerly = run_eagerly
        # One compiled function per sequence of (update_actor, update_targets) steps a call runs.
        self._step_functions: dict[tuple[tuple[bool, bool], ...], Callable] = {}
        self._concrete_steps: dict = {}
        self._numpy_copies: dict[str, NumpyActor] = {}  # "online" / "averaged": read from the actors on demand

    # -- acting --------------------------------------------------------------------------------------------

    def initial_state(self, batch_size: int = 1) -> tuple[np.ndarray, ...]:
        units = self.config.network.units
        return tuple(np.zeros((batch_size, units), np.float32) for _ in self.actor.initial_state(1))

    def _act_impl(self, observation: tf.Tensor, prev_action: tf.Tensor, state: State, exploring: bool = False):
        history = make_history(self.config.network, observation[:, None, :], prev_action[:, None, :])
        action, state = (self.actor if exploring else self.policy_actor())(history, state)
        return action[:, 0, :], state

    def policy_actor(self) -> Actor:
        """The actor a trained agent is judged and used by (evaluation, best.h5, ``rdpg evaluate``, export):
        the online actor, or with ``agent.policy_weights: averaged`` the target actor, which is its Polyak
        average. Measured on ``pendulum-novel``: the online actor's returns dip by hundreds at some evaluations
        while the average's stay put (README)."""
        return self.target_actor if self.config.agent.policy_weights == "averaged" else self.actor

    def act(self, observation: np.ndarray, prev_action: np.ndarray, state: tuple, exploring: bool = False
            ) -> tuple[np.ndarray, tuple]:
        """The deterministic action (unclipped, float32) for one observation, and the next state: of the
        policy's actor (``policy_actor``), or of the online actor when ``exploring`` (collecting experience).

        Runs in numpy on a cached copy of the actor's weights: one TF call costs ~300 µs, many times the
        arithmetic of a small actor. ``act_tf`` is the TensorFlow reference it is tested against."""
        history = np.asarray(observation, np.float32)[None, :]
        if self.config.network.history == "obs+prev_action":
            history = np.concatenate([history, np.asarray(prev_action, np.float32)[None, :]], axis=-1)
        averaged = not exploring and self.policy_actor() is self.target_actor
        action, state = self._numpy_copy(averaged).forward(history, tuple(state))
        return action[0], state

    def act_tf(self, observation: np.ndarray, prev_action: np.ndarray, state: tuple, exploring: bool = False
               ) -> tuple[np.ndarray, tuple]:
        action, state = (self._act_exploring if exploring else self._act)(
            tf.convert_to_tensor(observation[None, :], tf.float32),
            tf.convert_to_tensor(prev_action[None, :], tf.float32),
            tuple(tf.convert_to_tensor(s) for s in state))
        return action.numpy()[0], tuple(s.numpy() for s in state)

    def _numpy_copy(self, averaged: bool) -> NumpyActor:
        """The numpy copy of the online actor, or of the target actor (its average) when ``averaged``."""
        key = "averaged" if averaged else "online"
        if key not in self._numpy_copies:
            self._numpy_copies[key] = NumpyActor.from_actor(self.target_actor if averaged else self.actor)
        return self._numpy_copies[key]

    def actor_changed(self) -> None:
        """Drop the numpy copies of the actors' weights (after an update or a restore)."""
        self._numpy_copies = {}

    # -- learning ------------------------------------------------------------------------------------------

    def train_step(self, batch: Batch, update_actor: bool, update_targets: bool = True) -> dict[str, float]:
        """One gradient step on the critic(s), and on the actor when ``update_actor``; the target networks
        move (soft updates) when ``update_targets``; returns metrics."""
        return self.train_steps([batch], [update_actor], [update_targets])[0]

    def train_steps(self, batches: Sequence[Batch], actor_flags: Sequence[bool],
                    target_flags: Sequence[bool] | None = None) -> list[dict[str, float]]:
        """Gradient steps one after another in one compiled call: the i-th on ``batches[i]``, with an actor
        step where ``actor_flags[i]`` and soft target updates where ``target_flags[i]`` (default: every
        step; TD3 moves them only every ``policy_delay`` steps, ``Trainer._learn``); each step's metrics.
        The numbers are those of one ``train_step`` after
        another (tested bit for bit): the graph holds the steps in sequence. One call instead of several
        saves TensorFlow's set-up of each call and lets a step's tail (optimizer, target updates) run beside
        the next step's head (the target actor's forward pass, which a critic-only step leaves alone) on the
        second core. Measured per update, one call against one call per step: the feed-forward TD3 update of
        bench/throughput.py 2.04 against 2.32 ms, ``pendulum-novel``'s two steps per env step 3.14 against
        3.49 ms, the LSTM-128 TD3 update of bench/roofline.py no faster (0.95-1.00x) (README)."""
        if target_flags is None:
            target_flags = [True] * len(actor_flags)
        if not batches or not len(batches) == len(actor_flags) == len(target_flags):
            raise ValueError(f"{len(batches)} batches, {len(actor_flags)} actor flags, "
                             f"{len(target_flags)} target flags")
        pattern = tuple((bool(a), bool(t)) for a, t in zip(actor_flags, target_flags, strict=True))
        actor_steps = [actor for actor, _ in pattern]
        batch_size = batches[0].observations.shape[0]
        packed = np.stack([pack_batch(batch) for batch in batches])
        starts = [batch.start_state or self.initial_state(batch_size) for batch in batches]
        start_states = tuple(np.stack(parts) for parts in zip(*starts, strict=True))
        step = self._steps_function(pattern)
        if self.run_eagerly:
            metrics, actor_weights = step(packed, start_states)
        else:
            flat = [tf.constant(packed), *(tf.constant(s) for s in start_states)]
            metrics, actor_weights = call_graph(self._concrete(pattern, step, (packed, start_states)), flat)
        if any(actor_steps):
            # The call hands back the actor's new weights, flat: one read instead of one per variable. The
            # target actor moved too: its copy is dropped, read again when next evaluated.
            self._numpy_copies = {"online": self._numpy_copy(averaged=False).with_flat_weights(actor_weights.numpy())}
        values = iter(metrics.numpy().tolist())
        return [{name: next(values) for name in metric_names(update_actor)} for update_actor in actor_steps]

    def _steps_function(self, pattern: tuple[tuple[bool, bool], ...]) -> Callable:
        if pattern not in self._step_functions:
            self._step_functions[pattern] = self._wrap(
                lambda packed, start_states: self._packed_updates(packed, start_states, pattern))
        return self._step_functions[pattern]

    def tracing_counts(self) -> dict[str, int]:
        """How often each compiled sequence of steps was traced, by its steps' names (1 each: no retracing)."""
        return {"+".join(step_name(*step) for step in pattern):
                function.experimental_get_tracing_count()
                for pattern, function in self._step_functions.items()
                if hasattr(function, "experimental_get_tracing_count")}

    def _concrete(self, pattern, step, args):
        """The traced graph of ``step`` for these shapes, looked up once: calling it directly skips the
        signature hashing and cache lookup a ``tf.function`` call does every time (~1 ms on this CPU)."""
        packed, start_states = args
        key = (pattern, packed.shape, tuple(s.shape for s in start_states))
        if key not in self._concrete_steps:
            specs = tf.nest.map_structure(lambda a: tf.TensorSpec(np.shape(a), tf.float32), args)
            self._concrete_steps[key] = step.get_concrete_function(*specs)
        return self._concrete_steps[key]

    def _packed_updates(self, packed, start_states,
                        pattern: tuple[tuple[bool, bool], ...]) -> tuple[tf.Tensor, tf.Tensor]:
        """``_update`` once per (update_actor, update_targets) entry of ``pattern``, on batches packed by
        ``pack_batch`` and stacked (``[steps, batch, window, columns]``, start states ``[steps, batch,
        units]``); every step's metrics, and the actor's weights after the last step, each returned as one
        flat tensor: every tensor in or out of a compiled call costs Python time, and the feed-forward
        update is only a few milliseconds of arithmetic."""
        sizes = batch_field_sizes(self.stored_observation_dim, self.spec.action_dim)
        flat_metrics = []
        for i, (update_actor, update_targets) in enumerate(pattern):
            fields = tf.split(packed[i], sizes, axis=-1)
            for j in SCALAR_FIELDS:
                fields[j] = fields[j][..., 0]
            metrics = self._update(*fields, tuple(s[i] for s in start_states), update_actor=update_actor,
                                   update_targets=update_targets)
            flat_metrics += [tf.cast(metrics[name], tf.float32) for name in metric_names(update_actor)]
        # Read after every step's updates (TensorFlow orders a function's reads and writes of a variable
        # as written).
        flat_actor = (tf.concat([tf.reshape(w, [-1]) for w in NumpyActor.variables(self.actor)], axis=0)
                      if any(actor for actor, _ in pattern) else tf.zeros([0]))
        return tf.stack(flat_metrics), flat_actor

    def _encode(self, model, history, state, step_mask, outputs_from: int = 0):
        """Unroll a network's history encoder. The burn-in steps only warm up the state (no loss, no
        gradient); there the mask keeps steps of another episode from touching the zero state. The trained
        steps need no mask: whatever follows an episode's end is masked out of every loss."""
        b = self.burn_in
        if b and model.encoder.gates:
            _, state = model.encode(history[:, :b], state, step_mask[:, :b], fused=True)
            state = tuple(tf.stop_gradient(s) for s in state)
        return model.encode(history[:, b:], state, fused=True, outputs_from=outputs_from)[0]

    def _update(self, observations, next_observations, actions, prev_actions, rewards, terminated, valid,
                start_state, update_actor: bool, update_targets: bool = True) -> dict[str, tf.Tensor]:
        cfg = self.config
        agent = cfg.agent
        b = self.burn_in
        step_mask = valid > 0
        loss_mask = valid[:, b:]
        # Whole observations in the replay (an asymmetric critic's); the actor reads its components of them.
        actor_observations, actor_next_observations = (
            (observations, next_observations) if self.actor_indices is None else
            (tf.gather(observations, self.actor_indices, axis=-1),
             tf.gather(next_observations, self.actor_indices, axis=-1)))
        history = make_history(cfg.network, actor_observations, prev_actions)
        # History at t+1 is (o_{t+1}, a_t): next_observations carries the true final observation at an
        # episode end, which the next slot of the buffer (another episode) would not.
        next_history = make_history(cfg.network, actor_next_observations, actions)
        critic_history, critic_next_history = (observations, next_observations) if self.full_observation_critic \
            else (history, next_history)
        zero_critic_state = self.critics[0].initial_state(tf.shape(observations)[0])

        # ---- TD target from the target networks (no gradient).
        if self.recurrent:
            # The window shifted by one step: burn-in, then h_{t0} .. h_{t0+L}; the targets need h_{t+1}.
            target_history = tf.concat([history[:, : b + 1], next_history[:, b:]], axis=1)
            first = 1
        else:
            target_history, first = next_history, 0
        # A feed-forward critic over the whole observation needs no shifted window: o_{t+1} is all it reads.
        critic_target_history, critic_first = (critic_next_history, 0) if self.full_observation_critic \
            else (target_history, first)
        target_features = self._encode(self.target_actor, target_history, start_state, step_mask, first)
        next_actions = self.target_actor.head(target_features)
        if agent.target_noise > 0:
            seed = tf.stack([tf.constant(self.seed, tf.int64), self.gradient_steps])
            noise = tf.random.stateless_normal(tf.shape(next_actions), seed=seed) * agent.target_noise
            noise = tf.clip_by_value(noise, -agent.target_noise_clip, agent.target_noise_clip)
            next_actions = next_actions + noise * self.half_range
        next_actions = tf.clip_by_value(next_actions, self.low, self.high)
        next_qs = []
        for target in self.target_critics:
            features = self._encode(target, critic_target_history, zero_critic_state, step_mask, critic_first)
            next_qs.append(target.head(features, next_actions))
        next_q = tf.reduce_min(tf.stack(next_qs), axis=0)
        y = losses.td_target(rewards[:, b:], terminated[:, b:], next_q, agent.gamma, agent.reward_scale)

        # ---- Critic step.
        with tf.GradientTape() as tape:
            critic_loss = 0.0
            for critic in self.critics:
                features = self._encode(critic, critic_history, zero_critic_state, step_mask)
                q = critic.head(features, actions[:, b:])
                critic_loss += losses.critic_loss(q, y, loss_mask, agent.delta_clip)
                if critic is self.critics[0]:
                    mean_q = losses.masked_mean(q, loss_mask)
                    critic_features = features
            critic_loss = tf.debugging.check_numerics(critic_loss, "critic loss")
        critic_grads = tape.gradient(critic_loss, self.critic_variables)
        # With twin critics the loss is the sum of both critics' (each critic's gradient is its own loss's).
        metrics = {"critic_loss": critic_loss, "mean_q": mean_q}

        # ---- Actor step: dQ/da at the actor's own unclipped action, inverted, mean over samples once.
        # It reads the critic as it stood before this step's critic update (applied below, after the actor's
        # gradient is taken), as OpenAI Baselines' DDPG does: the two backward passes are then independent
        # and run side by side on two cores. Measured: bench/throughput.py's rdpg side 351 -> 379 env steps/s;
        # returns within the seeds' spread (README).
        if update_actor:
            with tf.GradientTape() as actor_tape:
                action = self.actor.head(self._encode(self.actor, history, start_state, step_mask))
            # The critic step's history summary is exactly the one this critic gives (no unroll again).
            critic_features = tf.stop_gradient(critic_features)
            with tf.GradientTape() as q_tape:
                q_tape.watch(action)
                q = self.critics[0].head(critic_features, action)
                q_sum = tf.reduce_sum(q * loss_mask)  # sum, not mean: per-sample dQ/da
            dqda = q_tape.gradient(q_sum, action)
            upstream = losses.actor_output_gradient(
                dqda, action, self.low, self.high, loss_mask, invert=agent.bounding == "invert")
            actor_grads = actor_tape.gradient(action, self.actor_variables, output_gradients=upstream)
            actor_grads = losses.clip_gradients(actor_grads, agent.clipnorm, agent.clipvalue)
            actor_loss = tf.debugging.check_numerics(-losses.masked_mean(q, loss_mask), "actor loss")
            metrics["actor_loss"] = actor_loss
            metrics["out_of_bounds"] = losses.out_of_bounds_share(action, self.low, self.high, loss_mask)

        self.critic_optimizer.apply_gradients(zip(critic_grads, self.critic_variables, strict=True))
        if update_actor:
            self.actor_optimizer.apply_gradients(zip(actor_grads, self.actor_variables, strict=True))

        # ---- Targets: soft on the steps the caller names (TD3: every policy_delay-th, with the actor, as in
        # Fujimoto et al.'s algorithm and Stable-Baselines3; DDPG: every step), or a hard copy every N steps.
        self.gradient_steps.assign_add(1)
        if agent.target_update < 1:
            if update_targets:
                for target, critic in zip(self.target_critics, self.critics, strict=True):
                    losses.soft_update(target.trainable_variables, critic.trainable_variables, agent.target_update)
                if update_actor:
                    losses.soft_update(self.target_actor.trainable_variables, self.actor.trainable_variables,
                                       agent.target_update)
        else:
            every = tf.constant(int(agent.target_update), tf.int64)
            # An explicit cond: the step is traced without AutoGraph (see __init__), so a Python `if` on a
            # tensor would not become one.
            tf.cond(tf.equal(self.gradient_steps % every, 0), self._hard_copy_targets, tf.no_op)
        return metrics

    def _hard_copy_targets(self) -> tf.Operation:
        for target, critic in zip(self.target_critics, self.critics, strict=True):
            losses.hard_update(target.trainable_variables, critic.trainable_variables)
        losses.hard_update(self.target_actor.trainable_variables, self.actor.trainable_variables)
        return tf.no_op()

    # -- state for checkpoints -----------------------------------------------------------------------------

    def networks(self) -> dict[str, keras.Model]:
        nets: dict[str, keras.Model] = {"actor": self.actor, "target_actor": self.target_actor}
        for i, (c, t) in enumerate(zip(self.critics, self.target_critics, strict=True)):
            nets[f"critic_{i}"] = c
            nets[f"target_critic_{i}"] = t
        return nets

    def optimizers(self) -> dict[str, FusedAdam]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def variable_groups(self) -> dict[str, list[tf.Variable]]:
        """Every variable that makes up the agent's state, grouped and in a fixed order."""
        groups = {name: list(model.variables) for name, model in self.networks().items()}
        groups.update({name: list(opt.variables) for name, opt in self.optimizers().items()})
        groups["counters"] = [self.gradient_steps]
        return groups


class NumpyActor:
    """The actor's forward pass for one observation in numpy (float32): the history encoder's cell (LSTM or
    GRU, Keras layout) and the dense head. Acting one step at a time is all dispatch overhead in TF."""

    def __init__(self, kind: str, units: int, arrays: list[np.ndarray], mid: np.ndarray | None,
                 half_range: np.ndarray | None):
        self.kind = kind
        self.units = units
        n_encoder = 3 if kind in ("lstm", "gru") else 0
        self.encoder = arrays[:n_encoder]
        head = arrays[n_encoder:]
        self.layers = list(zip(head[0::2], head[1::2], strict=True))
        self.mid = mid
        self.half_range = half_range

    @staticmethod
    def variables(actor: Actor) -> list:
        """The actor's acting weights in the order ``from_arrays`` expects."""
        encoder = actor.encoder
        out = [encoder.kernel, encoder.recurrent_kernel, encoder.bias] if encoder.gates else []
        return out + [w for d in [*actor.hidden, actor.out] for w in (d.kernel, d.bias)]

    @classmethod
    def from_actor(cls, actor: Actor) -> NumpyActor:
        return cls.from_arrays([np.asarray(v.numpy()) for v in cls.variables(actor)], actor)

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray], actor: Actor) -> NumpyActor:
        squash = (actor.mid.numpy(), actor.half_range.numpy()) if actor.squash else (None, None)
        return cls(actor.encoder.kind, actor.encoder.units, arrays, *squash)

    def with_flat_weights(self, flat: np.ndarray) -> NumpyActor:
        """The same actor with the weights in ``flat``: those of ``variables``, flattened and concatenated
        in that order (the arrays are views into ``flat``)."""
        arrays, offset = [], 0
        for like in [*self.encoder, *(w for layer in self.layers for w in layer)]:
            arrays.append(flat[offset:offset + like.size].reshape(like.shape))
            offset += like.size
        if offset != flat.size:
            raise ValueError(f"{flat.size} weights for an actor of {offset}")
        return NumpyActor(self.kind, self.units, arrays, self.mid, self.half_range)

    @staticmethod
    def _sigmoid(x: np.ndarray) -> np.ndarray:
        # The tanh form never overflows, unlike 1 / (1 + exp(-x)) on extreme inputs.
        return np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * x))

    def forward(self, history: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple]:
        x = history
        if self.kind == "lstm":
            kernel, recurrent, bias = self.encoder
            h, c = state
            i, f, g, o = np.split(x @ kernel + bias + h @ recurrent, 4, axis=-1)
            c = self._sigmoid(f) * c + self._sigmoid(i) * np.tanh(g)
            h = self._sigmoid(o) * np.tanh(c)
            state, x = (h, c), h
        elif self.kind == "gru":
            kernel, recurrent, bias = self.encoder
            (h,) = state
            x_z, x_r, x_h = np.split(x @ kernel + bias[0], 3, axis=-1)
            r_z, r_r, r_h = np.split(h @ recurrent + bias[1], 3, axis=-1)
            z = self._sigmoid(x_z + r_z)
            r = self._sigmoid(x_r + r_r)
            h = z * h + (np.float32(1.0) - z) * np.tanh(x_h + r * r_h)
            state, x = (h,), h
        for kernel, bias in self.layers[:-1]:
            x = np.maximum(x @ kernel + bias, np.float32(0.0))
        kernel, bias = self.layers[-1]
        x = x @ kernel + bias
        if self.mid is not None:
            x = self.mid + self.half_range * np.tanh(x)
        return x, state
