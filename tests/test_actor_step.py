"""One actor step of the real Agent, on tiny networks whose critic is set by hand so dQ/da is known.

The critic reads (observation, action) through Dense(16, relu) -> Dense(1). Setting its first kernel to zero
except the action row (``slope``), its bias to ``offset`` and its output weights to 1/16 gives
Q(s, a) = slope * a + offset wherever slope * a + offset > 0: dQ/da = slope, whatever the observation.
The critic's learning rate is set to zero so that critic stays the same function over repeated steps (within
one step the actor reads the critic from before that step's critic update anyway: see the last test).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from rdpg_cli.agent import Agent
from rdpg_cli.config import config_from_dict
from rdpg_cli.envs import EnvSpec
from rdpg_cli.replay import Batch

LOW, HIGH = -2.0, 2.0
BATCH = 8


def make_agent(bounding: str = "invert", actor_lr: float = 0.05, seed: int = 0, compiled: bool = False,
               **agent: object) -> Agent:
    """Eager by default: tracing the compiled step costs about a second per agent; the tests marked
    ``compiled`` run the real ``tf.function``."""
    config = config_from_dict({
        "env": {"id": "Pendulum-v1"},
        "action_bounds": {"low": [LOW], "high": [HIGH]},
        "agent": {"batch_size": BATCH, "actor_lr": actor_lr, "critic_lr": 1.0e-2, "bounding": bounding,
                  "target_update": 0.01, **agent},
        "network": {"actor_layers": [16], "critic_layers": [16]},
        "replay": {"size": 1000},
    })
    spec = EnvSpec("Pendulum-v1", observation_dim=3, action_dim=1,
                   low=np.array([LOW], np.float32), high=np.array([HIGH], np.float32))
    return Agent(config, spec, seed=seed, run_eagerly=not compiled)


def make_batch(seed: int = 0, valid: np.ndarray | None = None, window: int = 1) -> Batch:
    """``[B, window, ...]`` batch; feed-forward is ``window = 1``."""
    rng = np.random.default_rng(seed)
    return Batch(
        observations=rng.normal(size=(BATCH, window, 3)).astype(np.float32),
        next_observations=rng.normal(size=(BATCH, window, 3)).astype(np.float32),
        actions=rng.uniform(LOW, HIGH, size=(BATCH, window, 1)).astype(np.float32),
        prev_actions=np.zeros((BATCH, window, 1), np.float32),
        rewards=rng.normal(size=(BATCH, window)).astype(np.float32),
        terminated=np.zeros((BATCH, window), np.float32),
        valid=np.ones((BATCH, window), np.float32) if valid is None else valid.astype(np.float32),
        start_state=(),
    )


def set_critic(agent: Agent, slope: float, offset: float) -> None:
    """Q(s, a) = slope * a + offset where that is > 0 (see the module docstring)."""
    critic = agent.critics[0]
    hidden, out = critic.hidden[0], critic.out
    kernel = np.zeros(hidden.kernel.shape, np.float32)
    kernel[-1, :] = slope  # the action is the last input of the critic's first layer
    hidden.kernel.assign(kernel)
    hidden.bias.assign(np.full(hidden.bias.shape, offset, np.float32))
    out.kernel.assign(np.full(out.kernel.shape, 1.0 / out.kernel.shape[0], np.float32))
    out.bias.assign(np.zeros(out.bias.shape, np.float32))
    agent.critic_optimizer.learning_rate = 0.0


def set_constant_actor(agent: Agent, value: float) -> None:
    """The actor outputs ``value`` for every observation (zero output kernel, bias ``value``)."""
    out = agent.actor.out
    out.kernel.assign(np.zeros(out.kernel.shape, np.float32))
    out.bias.assign(np.full(out.bias.shape, value, np.float32))


def actor_output(agent: Agent, observations: np.ndarray) -> np.ndarray:
    action, _ = agent.actor(tf.constant(observations), ())
    return action.numpy()[..., 0]


def snapshot(variables) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "slope", "bounding", "direction", "compiled"),
    [
        (3.0, +1.0, "invert", -1, True),  # the compiled step, past high: back inside
        (1.0, +1.0, "invert", +1, False),  # inside, Q wants more: up
        (-1.0, -1.0, "invert", -1, False),  # inside, Q wants less: down
        (3.0, +1.0, "invert", -1, False),  # past high, Q still wants more: inverted, back inside (down)
        (-3.0, -1.0, "invert", +1, False),  # past low, Q wants less: inverted, back inside (up)
        (1.0, +1.0, "clip", +1, False),  # inside: clip agrees with invert
        (3.0, +1.0, "clip", +1, False),  # past high: clip follows Q further out
        (-3.0, -1.0, "clip", -1, False),  # past low: clip follows Q further out
    ],
)
def test_one_actor_step_moves_towards_higher_q_and_back_inside(start, slope, bounding, direction, compiled):
    agent = make_agent(bounding, compiled=compiled)
    set_critic(agent, slope=slope, offset=10.0)
    set_constant_actor(agent, start)
    batch = make_batch()
    before = actor_output(agent, batch.observations)
    np.testing.assert_allclose(before, start, rtol=1e-6)

    metrics = agent.train_step(batch, update_actor=True)

    after = actor_output(agent, batch.observations)
    moved = after - before
    assert np.all(direction * moved > 1e-3), f"{bounding} from {start}: moved {moved.ravel()}"
    outside = abs(start) > HIGH
    assert metrics["out_of_bounds"] == pytest.approx(1.0 if outside else 0.0)
    if bounding == "invert" and outside:
        # back inside, without jumping across the whole range
        assert np.all(np.abs(after) < abs(start))


def test_push_fades_to_nothing_at_the_bound():
    """At a = high with Q wanting more, the inverted gradient is exactly zero: the actor does not move."""
    agent = make_agent("invert")
    set_critic(agent, slope=1.0, offset=10.0)
    set_constant_actor(agent, HIGH)
    before = snapshot(agent.actor_variables)
    agent.train_step(make_batch(), update_actor=True)
    for b, v in zip(before, agent.actor_variables, strict=True):
        np.testing.assert_array_equal(b, v.numpy())


def test_repeated_steps_settle_at_the_bound_with_invert_but_not_with_clip():
    outputs = {}
    for bounding in ("invert", "clip"):
        agent = make_agent(bounding, actor_lr=0.02, compiled=True)
        set_critic(agent, slope=1.0, offset=10.0)
        set_constant_actor(agent, 3.0)
        batch = make_batch()
        for _ in range(40):
            agent.train_step(batch, update_actor=True)
        outputs[bounding] = actor_output(agent, batch.observations)
    assert np.all(np.abs(outputs["invert"] - HIGH) < 0.25), outputs["invert"]
    assert np.all(outputs["clip"] > 3.5), outputs["clip"]


def test_dqda_is_taken_at_the_unclipped_action():
    """Q = relu(a - 2.5) / 1: flat at the clipped action 2.0, rising at the actor's own 3.0.

    dQ/da at the unclipped action is 1 > 0, inverted: (2 - 3) / 4 < 0, so the output goes down. Had dQ/da
    been taken at clip(a) = 2.0 it would be 0 and the actor would not move."""
    agent = make_agent("invert")
    set_critic(agent, slope=1.0, offset=-2.5)
    set_constant_actor(agent, 3.0)
    batch = make_batch()
    agent.train_step(batch, update_actor=True)
    assert np.all(actor_output(agent, batch.observations) < 3.0 - 1e-3)


def test_actor_gradient_is_the_mean_over_valid_samples_once():
    """With plain SGD in place of Adam (Adam's step hides the gradient's scale), the output layer moves by
    exactly lr * mean over the valid samples of g' (bias) and of h * g' (kernel, h: last hidden layer).

    Dividing by n twice would move it by 1/6 of that (6 valid samples); counting the padded samples would
    shift the mean: both fail the comparison."""
    lr, slope = 0.1, 1.0
    agent = make_agent("invert", compiled=True)
    agent.actor_optimizer = keras.optimizers.SGD(learning_rate=lr)
    agent.actor_optimizer.build(agent.actor_variables)
    set_critic(agent, slope=slope, offset=10.0)
    out = agent.actor.out
    rng = np.random.default_rng(1)
    out.kernel.assign(rng.normal(scale=1.5, size=out.kernel.shape).astype(np.float32))
    out.bias.assign(np.array([1.0], np.float32))
    valid = np.array([1, 1, 0, 1, 1, 0, 1, 1], np.float32)[:, None]
    batch = make_batch(seed=2, valid=valid)

    x = tf.constant(batch.observations)
    for layer in agent.actor.hidden:
        x = layer(x)
    h = x.numpy()[:, 0, :].astype(np.float64)  # [B, 16]
    a = actor_output(agent, batch.observations)[:, 0].astype(np.float64)
    assert np.ptp(a) > 1.0 and np.any(a > HIGH), "the actions must differ between samples, some outside"
    g = np.full_like(a, slope)
    g_prime = np.where(g > 0, g * (HIGH - a), g * (a - LOW)) / (HIGH - LOW)
    keep = valid[:, 0] == 1
    kernel_before, bias_before = out.kernel.numpy().copy(), out.bias.numpy().copy()

    agent.train_step(batch, update_actor=True)

    expected_bias = bias_before + lr * g_prime[keep].mean()
    expected_kernel = kernel_before + lr * (h[keep] * g_prime[keep, None]).mean(axis=0)[:, None]
    np.testing.assert_allclose(out.bias.numpy(), expected_bias, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.kernel.numpy(), expected_kernel, rtol=1e-5, atol=1e-6)


def test_critic_is_not_updated_by_the_actor_step():
    batch = make_batch(seed=3)
    with_actor, without_actor = make_agent(seed=5), make_agent(seed=5)
    for agent in (with_actor, without_actor):
        set_constant_actor(agent, 1.0)  # make the actor step non-trivial and identical in both
    for a, b in zip(with_actor.critic_variables, without_actor.critic_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    actor_before = snapshot(with_actor.actor_variables)

    with_actor.train_step(batch, update_actor=True)
    without_actor.train_step(batch, update_actor=False)

    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(actor_before, with_actor.actor_variables,
                                                                 strict=True)), "the actor must have moved"
    for a, b in zip(with_actor.critic_variables, without_actor.critic_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for ta, tb in zip(with_actor.target_critics, without_actor.target_critics, strict=True):
        for a, b in zip(ta.variables, tb.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for b, v in zip(actor_before, without_actor.actor_variables, strict=True):
        np.testing.assert_array_equal(b, v.numpy())  # a critic-only step leaves the actor alone


def test_actor_step_with_zero_critic_learning_rate_leaves_the_critic_untouched():
    agent = make_agent()
    set_critic(agent, slope=1.0, offset=10.0)  # also sets the critic's learning rate to zero
    set_constant_actor(agent, 3.0)
    critic_before = snapshot(agent.critic_variables)
    actor_before = snapshot(agent.actor_variables)
    agent.train_step(make_batch(), update_actor=True)
    for b, v in zip(critic_before, agent.critic_variables, strict=True):
        np.testing.assert_array_equal(b, v.numpy())
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(actor_before, agent.actor_variables,
                                                                 strict=True))


@pytest.mark.parametrize(("compiled", "variant"), [(True, "feed-forward"), (False, "feed-forward"),
                                                   (True, "twin critics"), (True, "recurrent")])
def test_actor_step_reads_the_critic_from_before_this_steps_critic_update(compiled, variant):
    """A critic learning rate of zero or a huge one: the critics end far apart, the actors identical."""
    agent_options: dict = {"twin_critics": True} if variant == "twin critics" else {}
    if variant == "recurrent":
        config = config_from_dict({
            "env": {"id": "Pendulum-v1"},
            "action_bounds": {"low": [LOW], "high": [HIGH]},
            "agent": {"batch_size": BATCH, "actor_lr": 0.05, "target_update": 0.01},
            "network": {"actor_layers": [16], "critic_layers": [16], "recurrent": "lstm", "units": 8,
                        "history": "obs+prev_action"},
            "replay": {"size": 1000, "sequence_length": 4, "burn_in": 2},
        })
        spec = EnvSpec("Pendulum-v1", observation_dim=3, action_dim=1,
                       low=np.array([LOW], np.float32), high=np.array([HIGH], np.float32))
        still, moved = (Agent(config, spec, seed=6, run_eagerly=not compiled) for _ in range(2))
        batch = make_batch(seed=4, window=6)
    else:
        still, moved = (make_agent(seed=6, compiled=compiled, **agent_options) for _ in range(2))
        batch = make_batch(seed=4)
    still.critic_optimizer.learning_rate = 0.0
    moved.critic_optimizer.learning_rate = 0.5
    actor_before = snapshot(still.actor_variables)

    still.train_step(batch, update_actor=True)
    moved.train_step(batch, update_actor=True)

    assert any(not np.allclose(a.numpy(), b.numpy(), atol=1e-2)
               for a, b in zip(still.critic_variables, moved.critic_variables, strict=True))
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(actor_before, moved.actor_variables,
                                                                 strict=True)), "the actor must have moved"
    for a, b in zip(still.actor_variables, moved.actor_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
