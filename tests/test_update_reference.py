"""The update of DESIGN §2-3 against references computed here, independently of the agent's own code paths.

``Agent._update`` is checked from the outside: the TD target it hands to ``losses.td_target``, its metrics, the
gradients it hands to its optimizers and the weights it leaves, against a numpy (or plain TensorFlow) unroll
of the networks' weights written in this file one time step at a time. Batches come from a real replay memory
with episodes that end inside windows (terminated and truncated), so masks, burn-in and recorded start states
all matter. Eager agents (``run_eagerly``) let the tests read the step's intermediate tensors; the tests of
counters that live in the compiled step (hard target copies) run compiled.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from rdpg_cli import losses, networks
from rdpg_cli.agent import Agent
from rdpg_cli.config import config_from_dict
from rdpg_cli.envs import EnvSpec
from rdpg_cli.replay import Batch, ReplayBuffer

OBS, UNITS = 3, 5
LOW2, HIGH2 = np.array([-2.0, 0.0], np.float32), np.array([2.0, 5.0], np.float32)
BURN_IN, LENGTH = 2, 4


# -- building agents and batches -------------------------------------------------------------------------------


def make_agent(low: np.ndarray = LOW2, high: np.ndarray = HIGH2, recurrent: str = "none", seed: int = 0,
               compiled: bool = False, store_state: bool = False, batch_size: int = 16,
               actor_indices: list[int] | None = None, **agent: object) -> Agent:
    """A small agent on a (obs 3, action len(low)) task; recurrent ones read obs+prev_action with burn-in 2 and
    sequence length 4. ``actor_indices``: the actor sees those components (env.observation_indices) and the
    critics the whole observation (network.critic_input: full_observation). Eager unless ``compiled``."""
    sequence = {"sequence_length": LENGTH, "burn_in": BURN_IN, "store_state": store_state} \
        if recurrent != "none" else {}
    config = config_from_dict({
        "env": {"id": "Pendulum-v1", "observation_indices": actor_indices},
        "action_bounds": {"low": np.asarray(low).tolist(), "high": np.asarray(high).tolist()},
        "agent": {"batch_size": batch_size, **agent},
        "network": {"actor_layers": [8], "critic_layers": [8], "recurrent": recurrent, "units": UNITS,
                    "history": "obs+prev_action" if recurrent != "none" else "obs",
                    "critic_input": "history" if actor_indices is None else "full_observation"},
        "replay": {"size": 1000, **sequence},
    })
    spec = EnvSpec("Pendulum-v1", observation_dim=OBS if actor_indices is None else len(actor_indices),
                   action_dim=len(low), low=np.asarray(low, np.float32), high=np.asarray(high, np.float32),
                   full_observation_dim=OBS)
    return Agent(config, spec, seed=seed, run_eagerly=not compiled)


def perturb(agent: Agent, seed: int = 0, scale: float = 0.5) -> None:
    """Random weights of a useful size everywhere (the final layers start near zero), different between the
    online networks and their targets, and between the two critics."""
    rng = np.random.default_rng(seed)
    for model in [agent.actor, agent.target_actor, *agent.critics, *agent.target_critics]:
        for v in model.trainable_variables:
            v.assign(v.numpy() + rng.normal(scale=scale, size=v.shape).astype(np.float32))


def filled_replay(action_dim: int = 2, low: np.ndarray = LOW2, high: np.ndarray = HIGH2, seed: int = 0,
                  episodes: int = 14, state_sizes: tuple[int, ...] = ()) -> ReplayBuffer:
    """Short episodes (3-8 steps), ending alternately terminated and truncated; consecutive transitions are
    consistent (o_{t+1} of one step is o of the next), as the trainer stores them; random recorded states."""
    rng = np.random.default_rng(seed)
    replay = ReplayBuffer(1000, OBS, action_dim, state_sizes)
    for episode in range(episodes):
        n = int(rng.integers(3, 9))
        observation = rng.normal(size=OBS)
        for t in range(n):
            following = rng.normal(size=OBS)
            end = t == n - 1
            replay.add(observation, rng.uniform(low, high), rng.normal(), following,
                       terminated=end and episode % 2 == 0, truncated=end and episode % 2 == 1,
                       state=tuple(rng.normal(size=k).astype(np.float32) for k in state_sizes))
            observation = following
    return replay


def sample(replay: ReplayBuffer, seed: int = 1, batch_size: int = 16, recurrent: bool = True) -> Batch:
    window = (LENGTH, BURN_IN) if recurrent else (LENGTH, 0)
    return replay.sample(np.random.default_rng(seed), batch_size, *window)


def snapshot(variables) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


def every_variable(agent: Agent) -> list[np.ndarray]:
    """Networks, targets, optimizer moments and counters: everything an update may change."""
    return [np.array(v.numpy()) for group in agent.variable_groups().values() for v in group]


# -- a numpy reference of the networks ------------------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Net:
    """A network's weights in float64 numpy, and its forward pass one time step at a time (LSTM with Keras's
    gate order i, f, c, o; ReLU hidden layers; linear output)."""

    def __init__(self, model):
        encoder = model.encoder
        self.cell = [np.float64(w.numpy()) for w in (encoder.kernel, encoder.recurrent_kernel, encoder.bias)] \
            if encoder.gates else None
        self.layers = [(np.float64(d.kernel.numpy()), np.float64(d.bias.numpy())) for d in [*model.hidden, model.out]]

    def step(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        kernel, recurrent, bias = self.cell
        h, c = state
        i, f, g, o = np.split(x @ kernel + h @ recurrent + bias, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c

    def mlp(self, x: np.ndarray) -> np.ndarray:
        for kernel, bias in self.layers[:-1]:
            x = np.maximum(x @ kernel + bias, 0.0)
        kernel, bias = self.layers[-1]
        return x @ kernel + bias

    def q(self, features: np.ndarray, action: np.ndarray) -> np.ndarray:
        return self.mlp(np.concatenate([features, action], axis=-1))[..., 0]


def histories(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(o_t, a_{t-1}) and (o_{t+1}, a_t) per window step, float64."""
    history = np.concatenate([batch.observations, batch.prev_actions], axis=-1).astype(np.float64)
    following = np.concatenate([batch.next_observations, batch.actions], axis=-1).astype(np.float64)
    return history, following


def burned_in(net: Net, batch: Batch, history: np.ndarray, start: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The state after the burn-in steps, each applied only where valid (steps of another episode skipped)."""
    state = tuple(np.float64(s) for s in start)
    for j in range(BURN_IN):
        new = net.step(history[:, j], state)
        keep = batch.valid[:, j, None] > 0
        state = tuple(np.where(keep, n, s) for n, s in zip(new, state, strict=True))
    return state


def reference_update(agent: Agent, batch: Batch, gamma: float, delta: float,
                     actor_indices: list[int] | None = None):
    """y_t = r_t + gamma (1 - terminated_t) min_k Q'_k(h_{t+1}, clip(mu'(h_{t+1}))) for every trained step; for a
    recurrent agent h_{t+1} comes from unrolling each target network over the burn-in (masked; the actor from the
    recorded start state, the critics from zero), then o_b .. o_t, then (o_{t+1}, a_t); for a feed-forward one it
    is o_{t+1}. Also the online critics' Q(h_t, a_t), the Huber critic loss summed over critics (each a mean over
    valid steps), mean_q of critic 0, and the target actor's raw (unclipped) actions. With ``actor_indices`` the
    actors read those components of each observation and the critics, feed-forward, read o_{t+1} and o_t
    whole; the actor loss -mean Q_0(o_t, mu(h_t)) of the online actor is returned too."""
    b = BURN_IN if agent.recurrent else 0
    window = batch.valid.shape[1]
    target_actor = Net(agent.target_actor)
    targets = [Net(c) for c in agent.target_critics]
    online = [Net(c) for c in agent.critics]
    actor_batch = batch if actor_indices is None else batch._replace(
        observations=batch.observations[..., actor_indices],
        next_observations=batch.next_observations[..., actor_indices])
    actor_loss = None
    if agent.recurrent:
        history, following = histories(actor_batch)
        zero = (np.zeros((len(history), UNITS)),) * 2

        def h_next(net: Net, start: tuple) -> np.ndarray:
            """[B, L, units]: h_{t+1} for every trained step t."""
            state, out = burned_in(net, batch, history, start), []
            for t in range(b, window):
                state = net.step(history[:, t], state)  # h_t
                out.append(net.step(following[:, t], state)[0])  # one more step: h_{t+1}
            return np.stack(out, axis=1)

        def h_now(net: Net, start: tuple = zero) -> np.ndarray:
            state, out = burned_in(net, batch, history, start), []
            for t in range(b, window):
                state = net.step(history[:, t], state)
                out.append(state[0])
            return np.stack(out, axis=1)

        actor_next = h_next(target_actor, batch.start_state)
        if actor_indices is None:
            critics_next = [h_next(net, zero) for net in targets]
            critics_now = [h_now(net) for net in online]
        else:
            critics_next = [np.float64(batch.next_observations[:, b:])] * len(targets)
            critics_now = [np.float64(batch.observations[:, b:])] * len(online)
            mu_now = Net(agent.actor).mlp(h_now(Net(agent.actor), batch.start_state))
            mask = batch.valid[:, b:]
            actor_loss = -(online[0].q(critics_now[0], mu_now) * mask).sum() / mask.sum()
    else:
        actor_next = np.float64(batch.next_observations)
        critics_next = [actor_next] * len(targets)
        critics_now = [np.float64(batch.observations)] * len(online)

    raw = target_actor.mlp(actor_next)
    mu = np.clip(raw, LOW2, HIGH2)
    next_q = np.min([net.q(h, mu) for net, h in zip(targets, critics_next, strict=True)], axis=0)
    y = batch.rewards[:, b:] + gamma * (1.0 - batch.terminated[:, b:]) * next_q
    qs = [net.q(h, batch.actions[:, b:]) for net, h in zip(online, critics_now, strict=True)]
    mask = batch.valid[:, b:]

    def huber(e: np.ndarray) -> np.ndarray:
        a = np.abs(e)
        return np.where(a <= delta, 0.5 * e * e, delta * (a - 0.5 * delta))

    loss = sum((huber(q - y) * mask).sum() / mask.sum() for q in qs)
    mean_q = (qs[0] * mask).sum() / mask.sum()
    if actor_indices is not None:
        return y, loss, mean_q, raw, actor_loss
    return y, loss, mean_q, raw


# -- T1: the TD target ----------------------------------------------------------------------------------------


def capture_td_target(monkeypatch) -> dict[str, np.ndarray]:
    """The TD target an (eager) update hands to ``losses.td_target`` lands in the returned dict as ``"y"``."""
    captured = {}
    td_target = losses.td_target

    def capturing(*args, **kwargs):
        y = td_target(*args, **kwargs)
        captured["y"] = y.numpy()
        return y

    monkeypatch.setattr(losses, "td_target", capturing)
    return captured


@pytest.mark.parametrize("kind", ["lstm", "none"])
def test_td_target_critic_loss_and_mean_q_equal_a_step_by_step_reference(monkeypatch, kind):
    """Guards the TD target of DESIGN §3 in a TD3-style agent (twin critics; recurrent: burn-in 2 and recorded
    start states; feed-forward: windows of 4 without burn-in): ``terminated`` (not ``truncated``) stops the
    bootstrap, the target reads the next step (recurrent: the window shifted by exactly one step, h_{t+1}), the
    twin critics' minimum is taken, the target actor (not the online one) picks the next action, from the
    recorded start state, clipped to the bounds. The critic loss (Huber, masked, mean once) and mean_q follow."""
    gamma, delta = 0.9, 0.7
    recurrent = kind != "none"
    agent = make_agent(recurrent=kind, store_state=recurrent, twin_critics=True, gamma=gamma, delta_clip=delta,
                       target_update=0.3)
    perturb(agent, seed=0)
    out = agent.target_actor.out
    # Many target actions out of bounds: offsets from where the bias started, which was 0 before the middle of
    # the bounds.
    out.bias.assign(out.bias.numpy() - (LOW2 + HIGH2) / 2 + np.array([2.5, 2.5], np.float32))
    b = BURN_IN if recurrent else 0
    batch = sample(filled_replay(state_sizes=(UNITS, UNITS) if recurrent else ()), seed=1, recurrent=recurrent)
    mask = batch.valid[:, b:] > 0
    assert (batch.terminated[:, b:] * mask).sum() >= 2 and not mask.all()
    if recurrent:
        assert (batch.valid[:, :b] == 0).any(), "some burn-in steps must lie before an episode start"
        assert np.abs(batch.start_state[0][batch.valid[:, 0] > 0]).min() > 0, "recorded start states are used"

    y_ref, loss_ref, mean_q_ref, raw = reference_update(agent, batch, gamma, delta)
    outside = ((raw < LOW2) | (raw > HIGH2))[mask]
    assert outside.any() and not outside.all(), "the clip must matter for some target actions only"

    captured = capture_td_target(monkeypatch)
    metrics = agent.train_step(batch, update_actor=True)

    y = captured["y"]
    np.testing.assert_allclose(y[mask], y_ref[mask], rtol=1e-5, atol=1e-5)
    assert metrics["critic_loss"] == pytest.approx(loss_ref, rel=1e-5, abs=1e-6)
    assert metrics["mean_q"] == pytest.approx(mean_q_ref, rel=1e-5, abs=1e-6)

    rewards = batch.rewards[:, b:]
    terminated = (batch.terminated[:, b:] > 0) & mask
    np.testing.assert_array_equal(y[terminated], rewards[terminated])  # no bootstrap at all
    # Truncated: a valid step, not terminated, followed by an invalid one inside the window (the episode ended).
    next_invalid = np.zeros_like(mask)
    next_invalid[:, :-1] = ~mask[:, 1:]
    truncated = mask & ~terminated & next_invalid
    assert truncated.sum() >= 2
    assert np.all(np.abs(y[truncated] - rewards[truncated]) > 1e-3)  # a time limit still bootstraps


def test_a_critic_over_the_whole_observation_reads_it_whole_and_the_actor_its_components(monkeypatch):
    """``network.critic_input: full_observation`` with ``env.observation_indices``: the replay holds whole
    observations; the actors unroll over the selected components (in the indices' order) and the previous
    actions as before, the critics are feed-forward over the whole o_{t+1} (targets) and o_t (online). The TD
    target, the critic loss, mean_q and the actor loss equal the reference's."""
    gamma, delta, indices = 0.9, 0.7, [2, 0]
    agent = make_agent(recurrent="lstm", store_state=True, twin_critics=True, gamma=gamma, delta_clip=delta,
                       target_update=0.3, actor_indices=indices)
    assert agent.actor.encoder.kernel.shape[0] == len(indices) + 2  # selected components, previous action
    assert not agent.critics[0].encoder.gates and agent.critics[0].hidden[0].kernel.shape[0] == OBS + 2
    perturb(agent, seed=0)
    batch = sample(filled_replay(state_sizes=(UNITS, UNITS)), seed=1)
    y_ref, loss_ref, mean_q_ref, _, actor_loss_ref = reference_update(agent, batch, gamma, delta, indices)

    captured = capture_td_target(monkeypatch)
    metrics = agent.train_step(batch, update_actor=True)
    mask = batch.valid[:, BURN_IN:] > 0
    np.testing.assert_allclose(captured["y"][mask], y_ref[mask], rtol=1e-5, atol=1e-5)
    assert metrics["critic_loss"] == pytest.approx(loss_ref, rel=1e-5, abs=1e-6)
    assert metrics["mean_q"] == pytest.approx(mean_q_ref, rel=1e-5, abs=1e-6)
    assert metrics["actor_loss"] == pytest.approx(actor_loss_ref, rel=1e-5, abs=1e-6)


# -- T2, T4: masked steps change nothing -----------------------------------------------------------------------


def scaled_where(batch: Batch, where: np.ndarray) -> Batch:
    """The batch with every float field multiplied by 1000 (plus an offset, so zeros change too) where ``where``
    [B, W] is true; flags and recorded states unchanged."""

    def scale(a: np.ndarray) -> np.ndarray:
        w = where if a.ndim == 2 else where[..., None]
        return np.where(w, a * np.float32(1000.0) + np.float32(3.0), a).astype(np.float32)

    return batch._replace(observations=scale(batch.observations), next_observations=scale(batch.next_observations),
                          actions=scale(batch.actions), prev_actions=scale(batch.prev_actions),
                          rewards=scale(batch.rewards))


def run_pair(batch: Batch, changed: Batch) -> None:
    """The same fresh agent trained one full step on each batch: identical metrics and every variable."""
    results = []
    for b in (batch, changed):
        agent = make_agent(recurrent="lstm", twin_critics=True, delta_clip=1.0, seed=4)
        perturb(agent, seed=2)
        results.append((agent.train_step(b, update_actor=True), every_variable(agent)))
    (metrics, weights), (changed_metrics, changed_weights) = results
    assert changed_metrics == metrics
    for a, b in zip(weights, changed_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_invalid_trained_steps_change_no_metric_and_no_weight():
    """Guards the masks of the critic loss and of mean_q (and every other masked mean): steps after an episode's
    end in the trained part, made 1000 times larger, leave every metric and every updated weight as they were."""
    batch = sample(filled_replay(state_sizes=()), seed=3)
    where = np.zeros_like(batch.valid, bool)
    where[:, BURN_IN:] = batch.valid[:, BURN_IN:] == 0
    assert where.sum() >= 8
    run_pair(batch, scaled_where(batch, where))


def test_burn_in_steps_before_the_episode_start_change_no_metric_and_no_weight():
    """Guards the mask of the burn-in unroll: burn-in steps of the previous episode (valid 0), made 1000 times
    larger, must not reach the recurrent state any network starts its trained steps from."""
    batch = sample(filled_replay(state_sizes=()), seed=3)
    where = np.zeros_like(batch.valid, bool)
    where[:, :BURN_IN] = batch.valid[:, :BURN_IN] == 0
    assert where[:, :BURN_IN].any(axis=1).sum() >= 4
    run_pair(batch, scaled_where(batch, where))


# -- T3: no gradient through the burn-in -----------------------------------------------------------------------


def tf_lstm_features(model, history: tf.Tensor, start: tuple, valid: np.ndarray, stop: bool) -> tf.Tensor:
    """The encoder's h_t for the trained steps, unrolled here in TensorFlow ops from the model's variables: the
    masked burn-in, the state stop-gradiented after it when ``stop``, then the trained steps."""
    encoder = model.encoder
    h, c = (tf.constant(s, tf.float32) for s in start)
    out = []
    for t in range(history.shape[1]):
        z = tf.matmul(history[:, t], encoder.kernel) + tf.matmul(h, encoder.recurrent_kernel) + encoder.bias
        i, f, g, o = tf.split(z, 4, axis=-1)
        new_c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        new_h = tf.sigmoid(o) * tf.tanh(new_c)
        if t < BURN_IN:
            keep = tf.constant(valid[:, t, None] > 0)
            h, c = tf.where(keep, new_h, h), tf.where(keep, new_c, c)
            if t == BURN_IN - 1 and stop:
                h, c = tf.stop_gradient(h), tf.stop_gradient(c)
        else:
            h, c = new_h, new_c
            out.append(h)
    return tf.stack(out, axis=1)


def tf_mlp(model, x: tf.Tensor) -> tf.Tensor:
    for layer in model.hidden:
        x = tf.nn.relu(tf.tensordot(x, layer.kernel, 1) + layer.bias)
    return tf.tensordot(x, model.out.kernel, 1) + model.out.bias


def test_no_gradient_flows_into_the_burn_in(monkeypatch):
    """Guards the stop_gradient after the burn-in (DESIGN §3: burn-in only warms up the state): the critics' and
    the actor's gradients equal a reference unroll that cuts the gradient after the burn-in, and differ clearly
    from one that does not. The actor's reference is fed the upstream gradient (inverted dQ/da) the agent
    computed, so only the path through the encoder is compared."""
    agent = make_agent(recurrent="lstm", store_state=True, twin_critics=True, gamma=0.9, seed=1)
    perturb(agent, seed=5)
    batch = sample(filled_replay(state_sizes=(UNITS, UNITS), seed=7), seed=2)
    assert (batch.valid[:, :BURN_IN] > 0).sum() >= 8  # burn-in steps that do warm the state up

    captured: dict = {}
    td_target, output_gradient = losses.td_target, losses.actor_output_gradient

    def capture_y(*args, **kwargs):
        captured["y"] = td_target(*args, **kwargs)
        return captured["y"]

    def capture_upstream(*args, **kwargs):
        captured["upstream"] = output_gradient(*args, **kwargs)
        return captured["upstream"]

    def capture_grads(name, optimizer):
        apply = optimizer.apply_gradients

        def capturing(grads_and_vars):
            grads_and_vars = list(grads_and_vars)
            captured[name] = [g.numpy() for g, _ in grads_and_vars]
            return apply(grads_and_vars)

        monkeypatch.setattr(optimizer, "apply_gradients", capturing)

    monkeypatch.setattr(losses, "td_target", capture_y)
    monkeypatch.setattr(losses, "actor_output_gradient", capture_upstream)
    capture_grads("critic", agent.critic_optimizer)
    capture_grads("actor", agent.actor_optimizer)

    history = tf.constant(np.concatenate([batch.observations, batch.prev_actions], axis=-1))
    mask = tf.constant(batch.valid[:, BURN_IN:])
    actions = tf.constant(batch.actions[:, BURN_IN:])
    zero = (np.zeros((16, UNITS), np.float32),) * 2
    before_critic = snapshot(agent.critic_variables)
    before_actor = snapshot(agent.actor_variables)

    agent.train_step(batch, update_actor=True)

    # The references on the weights as they were before the step.
    for v, w in zip([*agent.critic_variables, *agent.actor_variables], [*before_critic, *before_actor], strict=True):
        v.assign(w)
    y = tf.constant(captured["y"])
    references = {}
    for stop in (True, False):
        with tf.GradientTape(persistent=True) as tape:
            loss = 0.0
            for critic in agent.critics:
                features = tf_lstm_features(critic, history, zero, batch.valid, stop)
                q = tf_mlp(critic, tf.concat([features, actions], axis=-1))[..., 0]
                loss += tf.reduce_sum(tf.square(q - y) * mask) / tf.reduce_sum(mask)
            action = tf_mlp(agent.actor, tf_lstm_features(agent.actor, history, batch.start_state, batch.valid, stop))
        references[stop] = (
            [g.numpy() for g in tape.gradient(loss, agent.critic_variables)],
            [g.numpy() for g in tape.gradient(action, agent.actor_variables, output_gradients=captured["upstream"])])

    for name, index in (("critic", 0), ("actor", 1)):
        with_stop, without_stop = references[True][index], references[False][index]
        encoder_difference = max(np.abs(a - b).max() for a, b in zip(with_stop, without_stop, strict=True))
        assert encoder_difference > 1e-3 * max(np.abs(g).max() for g in with_stop), f"{name}: no test power"
        for got, want in zip(captured[name], with_stop, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(want).max()))


# -- T5: actor gradient clipping -------------------------------------------------------------------------------

LOW1, HIGH1 = np.array([-2.0], np.float32), np.array([2.0], np.float32)


def set_critic(agent: Agent, slope: float, offset: float = 10.0, index: int = 0) -> None:
    """Critic ``index`` becomes Q(s, a) = slope * a + offset (where > 0) for a one-dimensional action: its first
    layer reads only the action (the last input), its output averages the units. Its learning rate is zero."""
    critic = agent.critics[index]
    hidden, out = critic.hidden[0], critic.out
    kernel = np.zeros(hidden.kernel.shape, np.float32)
    kernel[-1, :] = slope
    hidden.kernel.assign(kernel)
    hidden.bias.assign(np.full(hidden.bias.shape, offset, np.float32))
    out.kernel.assign(np.full(out.kernel.shape, 1.0 / out.kernel.shape[0], np.float32))
    out.bias.assign(np.zeros(out.bias.shape, np.float32))
    agent.critic_optimizer.learning_rate = 0.0


def feed_forward_batch(seed: int = 0, size: int = 8) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(
        observations=rng.normal(size=(size, 1, OBS)).astype(np.float32),
        next_observations=rng.normal(size=(size, 1, OBS)).astype(np.float32),
        actions=rng.uniform(-2, 2, size=(size, 1, 1)).astype(np.float32),
        prev_actions=np.zeros((size, 1, 1), np.float32),
        rewards=rng.normal(size=(size, 1)).astype(np.float32),
        terminated=np.zeros((size, 1), np.float32),
        valid=np.ones((size, 1), np.float32),
        start_state=(),
    )


def sgd_actor_step(lr: float, **clipping: float) -> list[np.ndarray]:
    """The change of every actor weight in one step with plain SGD (whose step is lr times the gradient, unlike
    Adam's), Q = a + 10 and random actor weights; the same agent and batch every call."""
    agent = make_agent(LOW1, HIGH1, seed=3, batch_size=8, **clipping)
    agent.actor_optimizer = keras.optimizers.SGD(learning_rate=lr)
    agent.actor_optimizer.build(agent.actor_variables)
    rng = np.random.default_rng(4)
    for v in agent.actor_variables:
        v.assign(v.numpy() + rng.normal(scale=0.5, size=v.shape).astype(np.float32))
    set_critic(agent, slope=1.0)
    before = snapshot(agent.actor_variables)
    agent.train_step(feed_forward_batch(seed=6), update_actor=True)
    return [np.float64(v.numpy()) - b for v, b in zip(agent.actor_variables, before, strict=True)]


def test_actor_clipnorm_and_clipvalue_bound_the_step():
    """Guards ``agent.clipnorm`` and ``agent.clipvalue`` (DESIGN §2: applied to the actor's gradients after
    inversion): with plain SGD, a clip norm far below the gradient's global norm makes the weights move by exactly
    lr * clipnorm in global norm, in the unclipped step's direction; a clip value moves each weight by the
    unclipped amount clipped to +-lr * clipvalue, so some weights move by exactly that and none by more."""
    lr = 1.0
    natural = sgd_actor_step(lr)
    natural_norm = np.sqrt(sum((d ** 2).sum() for d in natural))
    assert natural_norm > 0.05

    clipnorm = 0.005
    clipped = sgd_actor_step(lr, clipnorm=clipnorm)
    norm = np.sqrt(sum((d ** 2).sum() for d in clipped))
    assert norm == pytest.approx(lr * clipnorm, rel=2e-3)
    for d, n in zip(clipped, natural, strict=True):
        np.testing.assert_allclose(d, n * (clipnorm * lr / natural_norm), atol=2e-6)

    magnitudes = np.concatenate([np.abs(d).ravel() for d in natural])
    clipvalue = float(np.quantile(magnitudes[magnitudes > 0], 0.7)) / lr
    clipped = sgd_actor_step(lr, clipvalue=clipvalue)
    at_clip = 0
    for d, n in zip(clipped, natural, strict=True):
        np.testing.assert_allclose(d, np.clip(n, -lr * clipvalue, lr * clipvalue), atol=2e-6)
        assert np.all(np.abs(d) <= lr * clipvalue * (1 + 1e-5) + 1e-7)
        at_clip += int(np.sum(np.isclose(np.abs(d), lr * clipvalue, rtol=1e-4)))
    assert at_clip >= 0.2 * magnitudes.size


# -- T6: hard target copies -------------------------------------------------------------------------------------


def test_hard_target_copy_every_n_gradient_steps():
    """Guards ``target_update >= 1`` (DESIGN §3: a hard copy every that many gradient steps), compiled: with
    target_update 3, the targets equal the online networks exactly after steps 3 and 6 and differ after the
    others (every step moves the online networks)."""
    agent = make_agent(LOW1, HIGH1, compiled=True, twin_critics=True, target_update=3, batch_size=8)
    replay = filled_replay(1, LOW1, HIGH1, seed=3)
    rng = np.random.default_rng(0)
    pairs = [(agent.actor, agent.target_actor), *zip(agent.critics, agent.target_critics, strict=True)]
    for step in range(1, 8):
        agent.train_step(replay.sample(rng, 8), update_actor=True, update_targets=step not in (2, 5))
        for online, target in pairs:
            same = all(np.array_equal(a.numpy(), b.numpy())
                       for a, b in zip(online.trainable_variables, target.trainable_variables, strict=True))
            assert same == (step % 3 == 0), f"after step {step}: {online.name}"


# -- T7: target policy smoothing --------------------------------------------------------------------------------


def test_target_smoothing_noise_is_clipped_then_scaled_by_half_the_range(monkeypatch):
    """Guards TD3's target smoothing: noise of std target_noise, clipped to +-target_noise_clip, both fractions of
    half the action range. Bounds [-10, 10] (half range 10), std 0.5, clip 0.1 and a target actor whose output is
    zero: every action the target critic sees lies in +-1.0, most exactly at the clip, the rest spread inside."""
    low, high = np.array([-10.0, -10.0], np.float32), np.array([10.0, 10.0], np.float32)
    agent = make_agent(low, high, twin_critics=True, target_noise=0.5, target_noise_clip=0.1, batch_size=64)
    out = agent.target_actor.out
    out.kernel.assign(np.zeros(out.kernel.shape, np.float32))
    out.bias.assign(np.zeros(out.bias.shape, np.float32))
    seen: list[np.ndarray] = []
    head = networks.Critic.head

    def recording(self, features, action):
        if any(self is t for t in agent.target_critics):
            seen.append(np.asarray(action))
        return head(self, features, action)

    monkeypatch.setattr(networks.Critic, "head", recording)
    replay = filled_replay(2, low, high, seed=8)
    agent.train_step(replay.sample(np.random.default_rng(0), 64), update_actor=False)
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[0], seen[1])  # both target critics judge the same action
    actions = seen[0].ravel()
    assert np.all(np.abs(actions) <= 1.0 + 1e-6), np.abs(actions).max()
    at_clip = np.isclose(np.abs(actions), 1.0, rtol=0, atol=1e-6)
    # P(|N(0, 0.5)| > 0.1) = 0.84: most at the clip, the others inside and spread like 10 * N(0, 0.5).
    assert 0.65 < at_clip.mean() < 0.97
    inside = actions[~at_clip]
    assert len(inside) >= 5 and np.abs(inside).max() > 0.3


# -- T8: the actor reads critic 0 -------------------------------------------------------------------------------


@pytest.mark.parametrize("slope", [1.0, -1.0])
def test_actor_step_follows_the_first_critic_of_the_twins(slope):
    """Guards which critic the actor's dQ/da comes from (TD3: the first): twin critics with opposite slopes, an
    actor at 0; its output moves in critic 0's direction."""
    agent = make_agent(LOW1, HIGH1, twin_critics=True, batch_size=8, actor_lr=0.05)
    set_critic(agent, slope=slope, index=0)
    set_critic(agent, slope=-slope, index=1)
    out = agent.actor.out
    out.kernel.assign(np.zeros(out.kernel.shape, np.float32))
    out.bias.assign(np.zeros(out.bias.shape, np.float32))
    batch = feed_forward_batch(seed=2)
    agent.train_step(batch, update_actor=True)
    moved = agent.actor(tf.constant(batch.observations), ())[0].numpy()
    assert np.all(slope * moved > 1e-3), moved.ravel()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_one_compiled_recurrent_update_equals_an_independent_reference(kind):
    """The whole compiled step at once, every option that changes the numbers on: burn-in from recorded start
    states, twin critics, bounds of their own per dimension with half the actions outside them, a Huber loss,
    a reward scale, soft targets, Adam. Written here from DESIGN §2-3: the cells step by step, the TD target,
    dQ/da through the critic's ReLU layer by hand, its inversion, then one Adam step and the soft updates."""
    gamma, delta, scale, tau, actor_lr, critic_lr, batch_size = 0.9, 0.7, 0.3, 0.2, 1e-2, 3e-3, 16
    config = config_from_dict({
        "env": {"id": "Pendulum-v1"}, "action_bounds": {"low": LOW2.tolist(), "high": HIGH2.tolist()},
        "agent": {"batch_size": batch_size, "twin_critics": True, "gamma": gamma, "delta_clip": delta,
                  "reward_scale": scale, "target_update": tau, "actor_lr": actor_lr, "critic_lr": critic_lr},
        "network": {"actor_layers": [8], "critic_layers": [8], "recurrent": kind, "units": UNITS,
                    "history": "obs+prev_action"},
        "replay": {"size": 1000, "sequence_length": LENGTH, "burn_in": BURN_IN, "store_state": True}})
    agent = Agent(config, EnvSpec("Pendulum-v1", OBS, 2, LOW2, HIGH2), seed=0)
    perturb(agent, seed=0)
    agent.actor.out.bias.assign(agent.actor.out.bias.numpy() - (LOW2 + HIGH2) / 2 + np.array([2.5, 5.5], np.float32))
    states = 2 if kind == "lstm" else 1
    batch = filled_replay(state_sizes=(UNITS,) * states).sample(np.random.default_rng(1), batch_size, LENGTH, BURN_IN)

    def cell(model, x, state):
        encoder = model.encoder
        if kind == "lstm":
            h, c = state
            i, f, g, o = tf.split(x @ encoder.kernel + h @ encoder.recurrent_kernel + encoder.bias, 4, -1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c
        (h,) = state
        x_z, x_r, x_h = tf.split(x @ encoder.kernel + encoder.bias[0], 3, -1)
        r_z, r_r, r_h = tf.split(h @ encoder.recurrent_kernel + encoder.bias[1], 3, -1)
        z, r = tf.sigmoid(x_z + r_z), tf.sigmoid(x_r + r_r)
        return (z * h + (1 - z) * tf.tanh(x_h + r * r_h),)

    def mlp(model, x):
        for dense in model.hidden:
            x = tf.nn.relu(tf.tensordot(x, dense.kernel, 1) + dense.bias)
        return tf.tensordot(x, model.out.kernel, 1) + model.out.bias

    history = tf.constant(np.concatenate([batch.observations, batch.prev_actions], -1))
    next_history = tf.constant(np.concatenate([batch.next_observations, batch.actions], -1))

    def summaries(model, start, shifted: bool = False):
        """h_t over the trained steps (h_{t+1} when ``shifted``), after a masked burn-in without gradient."""
        state = tuple(tf.constant(s) for s in start)
        for j in range(BURN_IN):
            new, keep = cell(model, history[:, j], state), batch.valid[:, j, None] > 0
            state = tuple(tf.stop_gradient(tf.where(keep, n, o)) for n, o in zip(new, state, strict=True))
        out = []
        for t in range(BURN_IN, BURN_IN + LENGTH):
            state = cell(model, history[:, t], state)
            out.append(cell(model, next_history[:, t], state)[0] if shifted else state[0])
        return tf.stack(out, 1)

    zero = tuple(np.zeros((batch_size, UNITS), np.float32) for _ in range(states))
    mask = batch.valid[:, BURN_IN:].astype(np.float64)
    valid = mask.sum()
    next_action = np.clip(mlp(agent.target_actor, summaries(agent.target_actor, batch.start_state, True)), LOW2, HIGH2)
    next_q = np.min([mlp(t, tf.concat([summaries(t, zero, True), next_action], -1))[..., 0]
                     for t in agent.target_critics], axis=0)
    y = scale * batch.rewards[:, BURN_IN:] + gamma * (1 - batch.terminated[:, BURN_IN:]) * next_q
    with tf.GradientTape() as tape:
        loss = 0.0
        for critic in agent.critics:
            q = mlp(critic, tf.concat([summaries(critic, zero), batch.actions[:, BURN_IN:]], -1))[..., 0]
            error = tf.abs(q - y)
            huber = tf.where(error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta))
            loss += tf.reduce_sum(huber * mask) / valid
    critic_grads = [g.numpy() for g in tape.gradient(loss, agent.critic_variables)]
    with tf.GradientTape() as actor_tape:
        action = mlp(agent.actor, summaries(agent.actor, batch.start_state))
    a = action.numpy().astype(np.float64)
    outside = ((a < LOW2) | (a > HIGH2)) * mask[..., None]
    assert 0.25 < outside.sum() / (2 * valid) < 0.75  # inversion on both sides of the bounds matters here
    critic = agent.critics[0]
    inputs = np.concatenate([summaries(critic, zero).numpy(), a], -1)
    kernel, bias = critic.hidden[0].kernel.numpy(), critic.hidden[0].bias.numpy()
    dq_da = (((inputs @ kernel + bias) > 0) * critic.out.kernel.numpy()[:, 0]) @ kernel.T
    dq_da = dq_da[..., -2:]
    span = HIGH2 - LOW2
    inverted = np.where(dq_da > 0, dq_da * (HIGH2 - a) / span, dq_da * (a - LOW2) / span)
    upstream = tf.constant((-inverted * mask[..., None] / valid).astype(np.float32))
    actor_grads = [g.numpy() for g in actor_tape.gradient(action, agent.actor_variables, output_gradients=upstream)]

    def adam_step(weights, grad, lr):  # the first step: m = 0.1 g, v = 0.001 g², bias-corrected
        grad = grad.astype(np.float64)
        return weights - lr * np.sqrt(1 - 0.999) / 0.1 * (0.1 * grad) / (np.sqrt(0.001 * grad**2) + 1e-7)

    before = {name: [v.numpy().astype(np.float64) for v in variables] for name, variables in {
        "actor": agent.actor_variables, "critics": agent.critic_variables,
        "target_actor": agent.target_actor.trainable_variables,
        "target_critics": [v for t in agent.target_critics for v in t.trainable_variables]}.items()}
    metrics = agent.train_step(batch, update_actor=True)

    np.testing.assert_allclose(metrics["critic_loss"], float(loss), rtol=1e-5)
    for optimizer, grads in ((agent.actor_optimizer, actor_grads), (agent.critic_optimizer, critic_grads)):
        for (momentum, _), grad in zip(optimizer.slots, grads, strict=True):  # m / 0.1 is the step's gradient
            np.testing.assert_allclose(momentum.numpy() / 0.1, grad, rtol=1e-3, atol=1e-6 * np.abs(grad).max())
    new_actor = [adam_step(w, g, actor_lr) for w, g in zip(before["actor"], actor_grads, strict=True)]
    new_critics = [adam_step(w, g, critic_lr) for w, g in zip(before["critics"], critic_grads, strict=True)]
    for variables, expected in ((agent.actor_variables, new_actor), (agent.critic_variables, new_critics),
                                (agent.target_actor.trainable_variables,
                                 [(1 - tau) * t + tau * w for t, w in zip(before["target_actor"], new_actor,
                                                                          strict=True)]),
                                ([v for t in agent.target_critics for v in t.trainable_variables],
                                 [(1 - tau) * t + tau * w for t, w in zip(before["target_critics"], new_critics,
                                                                          strict=True)])):
        for variable, want in zip(variables, expected, strict=True):
            np.testing.assert_allclose(variable.numpy(), want, rtol=1e-4, atol=1e-5)
