"""The agent's networks and acting: shapes, state resets, the numpy fast path, one update path for DDPG/RDPG."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from rdpg_cli import agent as agent_module
from rdpg_cli import networks
from rdpg_cli.agent import Agent
from rdpg_cli.config import config_from_dict
from rdpg_cli.envs import EnvSpec
from rdpg_cli.networks import HistoryEncoder
from rdpg_cli.policy import AgentPolicy
from rdpg_cli.replay import ReplayBuffer

SPEC = EnvSpec("Pendulum-v1", observation_dim=2, action_dim=1, low=np.array([-2.0], np.float32),
               high=np.array([2.0], np.float32))


def make_agent(recurrent: str = "none", history: str = "obs", seed: int = 0, **agent) -> Agent:
    sequence = {"sequence_length": 4, "burn_in": 2} if recurrent != "none" else {}
    config = config_from_dict({
        "env": {"id": "Pendulum-v1", "observation_indices": [0, 1]},
        "action_bounds": {"low": [-2.0], "high": [2.0]},
        "agent": {"batch_size": 8, **agent},
        "network": {"actor_layers": [16], "critic_layers": [16], "recurrent": recurrent, "units": 8,
                    "history": history},
        "replay": {"size": 1000, **sequence},
    })
    return Agent(config, SPEC, seed=seed)


def filled_replay(seed: int = 0, episodes: int = 6, length: int = 30) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    replay = ReplayBuffer(1000, 2, 1)
    for _ in range(episodes):
        for t in range(length):
            replay.add(rng.normal(size=2), rng.uniform(-2, 2, 1), rng.normal(), rng.normal(size=2),
                       terminated=False, truncated=t == length - 1)
    return replay


@pytest.mark.parametrize("kind", ["none", "lstm", "gru"])
def test_network_output_and_state_shapes(kind):
    agent = make_agent(kind, history="obs+prev_action")
    history = tf.zeros([5, 7, 3])  # obs 2 + previous action 1
    state = agent.actor.initial_state(5)
    assert len(state) == {"none": 0, "lstm": 2, "gru": 1}[kind]
    actions, new_state = agent.actor(history, state)
    assert actions.shape == (5, 7, 1)
    assert [tuple(s.shape) for s in new_state] == [(5, 8)] * len(state)
    q, critic_state = agent.critics[0](history, tf.zeros([5, 7, 1]), agent.critics[0].initial_state(5))
    assert q.shape == (5, 7)
    assert len(critic_state) == len(state)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_masked_steps_leave_the_state_alone(kind):
    encoder = HistoryEncoder(kind, 4)
    x = tf.random.stateless_normal([3, 5, 2], seed=[1, 2])
    zero = encoder.initial_state(3)
    mask = tf.constant([[False, False, True, True, True]] * 3)
    masked, masked_state = encoder(x, zero, mask)
    plain, plain_state = encoder(x[:, 2:], zero)
    np.testing.assert_allclose(masked[:, 2:].numpy(), plain.numpy(), atol=1e-6)
    for a, b in zip(masked_state, plain_state, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


@pytest.mark.parametrize(("kind", "history"), [("none", "obs"), ("none", "obs+prev_action"), ("lstm", "obs"),
                                               ("lstm", "obs+prev_action"), ("gru", "obs+prev_action")])
def test_numpy_acting_matches_tensorflow(kind, history):
    agent = make_agent(kind, history=history, seed=3)
    rng = np.random.default_rng(0)
    fast, reference = agent.initial_state(), agent.initial_state()
    prev = np.zeros(1, np.float32)
    for _ in range(50):
        observation = (rng.normal(size=2) * 3).astype(np.float32)
        a_fast, fast = agent.act(observation, prev, fast)
        a_ref, reference = agent.act_tf(observation, prev, reference)
        np.testing.assert_allclose(a_fast, a_ref, atol=1e-5, rtol=1e-5)
        for s_fast, s_ref in zip(fast, reference, strict=True):
            np.testing.assert_allclose(s_fast, s_ref, atol=1e-5)
        prev = np.clip(a_fast, -2, 2)


@pytest.mark.parametrize(("bounding", "kind"), [("invert", "none"), ("clip", "lstm"), ("tanh", "none")])
def test_an_untrained_actor_acts_in_the_middle_of_the_bounds(bounding, kind):
    """A linear output started at 0 whatever the bounds: with [0.5, 2] and [-1, 10] the untrained policy pushed
    at (or past) a bound. It starts in the middle, as a tanh-squashed one does; symmetric bounds keep 0."""
    low, high = np.array([0.5, -1.0], np.float32), np.array([2.0, 10.0], np.float32)
    spec = EnvSpec("Custom-v0", observation_dim=2, action_dim=2, low=low, high=high)
    config = config_from_dict({
        "env": {"id": "Pendulum-v1"}, "action_bounds": {"low": low.tolist(), "high": high.tolist()},
        "agent": {"bounding": bounding},
        "network": {"actor_layers": [16], "critic_layers": [16], "recurrent": kind, "units": 8},
        "replay": {"size": 1000, **({"sequence_length": 4} if kind != "none" else {})}})
    agent = Agent(config, spec, seed=0)
    rng = np.random.default_rng(0)
    actions = np.array([agent.act(rng.normal(size=2).astype(np.float32), np.zeros(2, np.float32),
                                  agent.initial_state())[0] for _ in range(20)])
    np.testing.assert_allclose(actions.mean(axis=0), (low + high) / 2, atol=0.1 * (high - low).max())
    assert np.all((actions > low) & (actions < high)), actions
    if bounding != "tanh":
        np.testing.assert_array_equal(agent.actor.out.bias.numpy(), (low + high) / 2)
        np.testing.assert_array_equal(agent.target_actor.out.bias.numpy(), (low + high) / 2)  # averaged from it
    assert np.all(make_agent().actor.out.bias.numpy() == 0.0)  # symmetric bounds: as before


def test_numpy_acting_follows_actor_updates():
    agent = make_agent(seed=1)
    replay = filled_replay()
    observation = np.array([0.3, -0.2], np.float32)
    before = agent.act(observation, np.zeros(1, np.float32), ())[0]
    agent.train_step(replay.sample(np.random.default_rng(0), 8), update_actor=True)
    after = agent.act(observation, np.zeros(1, np.float32), ())[0]
    assert not np.array_equal(before, after)
    np.testing.assert_allclose(after, agent.act_tf(observation, np.zeros(1, np.float32), ())[0], atol=1e-6)


@pytest.mark.parametrize("kind", ["none", "lstm"])
def test_averaged_policy_acts_with_the_target_actor_and_exploration_with_the_online_one(kind):
    """``agent.policy_weights: averaged``: evaluation acting (numpy and TF alike) follows the target actor,
    refreshed after each update, while exploring follows the online actor; ``online`` uses the online one for both."""
    replay = filled_replay()
    observation = np.array([0.3, -0.2], np.float32)
    prev = np.zeros(1, np.float32)
    for weights in ("online", "averaged"):
        agent = make_agent(kind, history="obs+prev_action", seed=1, policy_weights=weights, target_update=0.5)
        rng = np.random.default_rng(0)
        for _ in range(3):
            agent.train_step(replay.sample(rng, 8, *((4, 2) if kind != "none" else ())), update_actor=True)
            state = agent.initial_state()
            online = agent.act(observation, prev, state, exploring=True)[0]
            policy = agent.act(observation, prev, state)[0]
            history = tf.constant(np.concatenate([observation, prev])[None, None, :])
            expected = {name: net(history, net.initial_state(1))[0].numpy().ravel()
                        for name, net in (("online", agent.actor), ("averaged", agent.target_actor))}
            np.testing.assert_allclose(online, expected["online"], atol=1e-5)
            np.testing.assert_allclose(policy, expected[weights], atol=1e-5)
            np.testing.assert_allclose(agent.act_tf(observation, prev, state)[0], expected[weights], atol=1e-5)
            np.testing.assert_allclose(agent.act_tf(observation, prev, state, exploring=True)[0],
                                       expected["online"], atol=1e-5)
        assert agent.policy_actor() is (agent.target_actor if weights == "averaged" else agent.actor)
        assert not np.allclose(expected["online"], expected["averaged"])  # the two actors differ by now
        assert AgentPolicy(agent, exploring=True).act(observation) == pytest.approx(np.clip(online, -2, 2))
        assert AgentPolicy(agent).act(observation) == pytest.approx(np.clip(policy, -2, 2))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_resets_at_episode_start(kind):
    """After a whole episode, the first action of the next equals a fresh policy's for the same observation."""
    agent = make_agent(kind, history="obs+prev_action", seed=2)
    rng = np.random.default_rng(1)
    policy = AgentPolicy(agent)
    first_episode = [rng.normal(size=2).astype(np.float32) for _ in range(20)]
    start = rng.normal(size=2).astype(np.float32)
    for observation in first_episode:
        policy.act(observation)
    carried = policy.act(start)  # without a reset the history leaks in
    policy.reset()
    after_reset = policy.act(start)
    fresh = AgentPolicy(agent).act(start)
    np.testing.assert_array_equal(after_reset, fresh)
    assert not np.array_equal(carried, after_reset)


def test_feedforward_sequences_equal_flattened_transitions():
    """DDPG is RDPG with no recurrence: a feed-forward update on [B, L] windows is the update on the B*L
    transitions as a batch of sequence length 1 (same loss, same new weights)."""
    replay = filled_replay(seed=4)
    batch = replay.sample(np.random.default_rng(2), 8, sequence_length=4)
    flat = type(batch)(*[x.reshape(32, 1, *x.shape[2:]) for x in batch[:-1]], start_state=())
    windowed_agent, flat_agent = make_agent(seed=7), make_agent(seed=7)
    m_windowed = windowed_agent.train_step(batch, update_actor=True)
    m_flat = flat_agent.train_step(flat, update_actor=True)
    for key in ("critic_loss", "mean_q", "actor_loss"):
        assert m_windowed[key] == pytest.approx(m_flat[key], rel=1e-5, abs=1e-7)
    for a, b in zip(windowed_agent.actor.variables, flat_agent.actor.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    for a, b in zip(windowed_agent.critics[0].variables, flat_agent.critics[0].variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_burn_in_steps_carry_no_loss():
    """Changing rewards inside the burn-in part changes nothing; changing them in the trained part does."""
    replay = filled_replay(seed=5)
    batch = replay.sample(np.random.default_rng(3), 8, sequence_length=4, burn_in=2)
    burn = batch.rewards.copy()
    burn[:, :2] += 100.0
    trained = batch.rewards.copy()
    trained[:, 2:] += 100.0
    losses = {}
    for name, rewards in (("base", batch.rewards), ("burn", burn), ("trained", trained)):
        agent = make_agent("lstm", history="obs+prev_action", seed=9)
        losses[name] = agent.train_step(batch._replace(rewards=rewards), update_actor=False)["critic_loss"]
    assert losses["burn"] == losses["base"]
    assert losses["trained"] != losses["base"]


def test_reward_scale_is_the_update_on_scaled_rewards():
    """agent.reward_scale c trains exactly as c times the rewards would: the scale reaches the TD target."""
    replay = filled_replay(seed=6)
    batch = replay.sample(np.random.default_rng(4), 8, sequence_length=4, burn_in=2)
    scaled_config = make_agent("lstm", history="obs+prev_action", seed=3, reward_scale=0.1)
    scaled_rewards = make_agent("lstm", history="obs+prev_action", seed=3)
    plain = make_agent("lstm", history="obs+prev_action", seed=3)
    got = scaled_config.train_step(batch, update_actor=True)
    want = scaled_rewards.train_step(batch._replace(rewards=batch.rewards * np.float32(0.1)), update_actor=True)
    unscaled = plain.train_step(batch, update_actor=True)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert got["critic_loss"] != pytest.approx(unscaled["critic_loss"], rel=1e-3)
    for a, b in zip(scaled_config.critics[0].variables, scaled_rewards.critics[0].variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_train_step_traces_once_per_flavour():
    agent = make_agent(seed=0)
    replay = filled_replay()
    rng = np.random.default_rng(0)
    for i in range(6):
        agent.train_step(replay.sample(rng, 8), update_actor=i % 2 == 0)
    for _ in range(3):
        agent.train_steps([replay.sample(rng, 8), replay.sample(rng, 8)], [False, True])
        agent.train_steps([replay.sample(rng, 8), replay.sample(rng, 8)], [False, True], [False, True])
    assert agent.tracing_counts() == {"full": 1, "critic-only": 1, "critic-only+full": 1,
                                      "critic-only-no-targets+full": 1}


def test_targets_move_only_on_the_steps_that_update_them():
    """A step whose targets flag is off (TD3 between its delayed steps) trains the critics and leaves every
    target network where it was; one with it on moves each target by tau towards its network, the target
    actor only when the actor was trained too."""
    tau = 0.1
    agent = make_agent(seed=0, target_update=tau, twin_critics=True)
    batch = filled_replay().sample(np.random.default_rng(0), 8)
    pairs = [(t, n) for ts, ns in [(agent.target_critics, agent.critics), ([agent.target_actor], [agent.actor])]
             for t, n in zip(ts, ns, strict=True)]

    def weights(model):
        return [v.numpy() for v in model.trainable_variables]

    for update_actor, update_targets in [(False, False), (True, False), (False, True), (True, True)]:
        before = [(weights(t), weights(n)) for t, n in pairs]
        agent.train_step(batch, update_actor, update_targets)
        for (target, network), (target_before, network_before) in zip(pairs, before, strict=True):
            is_actor = network is agent.actor
            trained = update_actor or not is_actor
            assert any((a != b).any() for a, b in zip(weights(network), network_before, strict=True)) == trained
            moves = update_targets and trained
            for now, old, new in zip(weights(target), target_before, weights(network), strict=True):
                expected = (1 - tau) * old + tau * new if moves else old
                np.testing.assert_allclose(now, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("kind", "flags"), [
    ("none", [False, True, False, True]),
    ("none", [True, False, False]),
    ("lstm", [False, True, True]),
])
def test_steps_in_one_call_give_the_numbers_of_one_call_each(kind, flags):
    """``train_steps`` runs its steps in sequence: metrics, every variable and the numpy actor equal those of
    one ``train_step`` after another, bit for bit (TD3 options on: target noise reads the step counter)."""
    replay = filled_replay()
    window = (4, 2) if kind != "none" else ()
    td3 = {"twin_critics": True, "policy_delay": 2, "target_noise": 0.2}
    rng = np.random.default_rng(5)
    batches = [replay.sample(rng, 8, *window) for _ in flags]
    one_by_one = make_agent(kind, history="obs+prev_action", seed=2, **td3)
    in_one_call = make_agent(kind, history="obs+prev_action", seed=2, **td3)
    for _ in range(2):  # twice: the second round starts from moved weights and optimizer moments
        # The target networks move with the actor, as TD3 moves them.
        separate = [one_by_one.train_step(batch, flag, flag) for batch, flag in zip(batches, flags, strict=True)]
        together = in_one_call.train_steps(batches, flags, flags)
        assert together == separate
    for a, b in zip(one_by_one.variable_groups().values(), in_one_call.variable_groups().values(), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
    observation, previous = np.ones(2, np.float32), np.zeros(1, np.float32)
    np.testing.assert_array_equal(
        one_by_one.act(observation, previous, one_by_one.initial_state(1), exploring=True)[0],
        in_one_call.act(observation, previous, in_one_call.initial_state(1), exploring=True)[0])


def test_train_steps_refuses_mismatched_flags():
    agent = make_agent(seed=0)
    batch = filled_replay().sample(np.random.default_rng(0), 8)
    with pytest.raises(ValueError, match="2 batches, 1 actor flags, 1 target flags"):
        agent.train_steps([batch] * 2, [True])
    with pytest.raises(ValueError, match="2 batches, 2 actor flags, 1 target flags"):
        agent.train_steps([batch] * 2, [True, False], [True])


class _PublicCallOnly:
    """A traced graph seen only through its public call (no private flat call)."""

    def __init__(self, function):
        self.function = function

    def __call__(self, *args):
        return self.function(*args)


@pytest.mark.parametrize("kind", ["none", "lstm"])
def test_flat_graph_call_gives_the_numbers_of_the_public_call(kind, monkeypatch):
    replay = filled_replay()
    results = []
    for public in (False, True):
        if public:
            monkeypatch.setattr(agent_module, "call_graph",
                                lambda f, inputs, call=agent_module.call_graph: call(_PublicCallOnly(f), inputs))
        agent = make_agent(kind, history="obs+prev_action", seed=4)
        rng = np.random.default_rng(1)
        metrics = [agent.train_step(replay.sample(rng, 8, *((4, 2) if kind != "none" else ())), i % 2 == 0)
                   for i in range(4)]
        acted = agent.act(np.ones(2, np.float32), np.zeros(1, np.float32), agent.initial_state(1))[0]
        results.append((metrics, [v.numpy() for v in agent.actor.variables + agent.critics[0].variables], acted))
    (m_flat, w_flat, a_flat), (m_public, w_public, a_public) = results
    assert m_flat == m_public
    for a, b in zip(w_flat, w_public, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a_flat, a_public)


def _lstm_with_inputs():
    """An LSTM-8 with a bias that is not zero, a [4, 6, 3] input and a random start state."""
    encoder = HistoryEncoder("lstm", 8)
    x = tf.random.stateless_normal([4, 6, 3], seed=[3, 4])
    state = tuple(tf.random.stateless_normal([4, 8], seed=[5, i]) for i in range(2))
    encoder(x, state)
    encoder.bias.assign(tf.random.stateless_normal([32], seed=[8, 9]))
    return encoder, x, state


@pytest.mark.parametrize("backward", ["kernel", "ops"])
@pytest.mark.parametrize("final_cell_in_loss", [True, False])
def test_fused_lstm_equals_the_cell_forward_and_backward(backward, final_cell_in_loss, monkeypatch):
    """The fused kernel (the update's unrolls) computes the unrolled cell's outputs, final state and
    gradients, for the weights, the inputs and the start state, with a bias that is not zero; with the
    kernel's own backward pass and with the one written in ops (wide layers), whether or not the final cell
    state reaches the loss."""
    monkeypatch.setattr(networks, "OP_BACKWARD_MIN_UNITS", 1 if backward == "ops" else 10**9)
    encoder, x, state = _lstm_with_inputs()
    output_weights = tf.random.stateless_normal([4, 6, 8], seed=[10, 11])
    results = []
    for fused in (False, True):
        with tf.GradientTape() as tape:
            tape.watch([x, *state])
            outputs, final = encoder(x, state, fused=fused)
            loss = tf.reduce_sum(outputs * output_weights) + tf.reduce_sum(final[0])
            if final_cell_in_loss:
                loss += tf.reduce_sum(final[1] * output_weights[:, 0])
        grads = tape.gradient(loss, [x, *state, *encoder.trainable_variables])
        results.append([outputs, *final, *grads])
    for cell, fused in zip(*results, strict=True):
        np.testing.assert_allclose(fused.numpy(), cell.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("outputs_from", [0, 2])
def test_fused_lstm_with_masked_leading_steps_equals_the_masked_cell(outputs_from, compiled, monkeypatch):
    """The burn-in's unroll in the fused kernel (steps of the episode before lead a row and leave its state
    alone) computes the masked cell's outputs, final state and gradients: rows with no step masked, some, all
    but the last, and all; eagerly and compiled with the batch size unknown, as in the update. The fused run
    never touches the cell."""
    encoder, x, state = _lstm_with_inputs()
    step_mask = tf.constant([[True] * 6, [False] * 2 + [True] * 4, [False] * 5 + [True], [False] * 6])
    output_weights = tf.random.stateless_normal([4, 6 - outputs_from, 8], seed=[10, 11])

    def run(x, h0, c0, step_mask, fused):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            outputs, final = encoder(x, (h0, c0), step_mask, fused=fused, outputs_from=outputs_from)
            loss = tf.reduce_sum(outputs * output_weights) + tf.reduce_sum(final[0]) + tf.reduce_sum(final[1] ** 2)
        return [outputs, *final, *tape.gradient(loss, [x, h0, c0, *encoder.trainable_variables])]

    cell = run(x, *state, step_mask, fused=False)

    def no_cell(*args):
        raise AssertionError("the fused path ran the cell")

    monkeypatch.setattr(HistoryEncoder, "_cell", no_cell)
    fused_run = lambda *args: run(*args, fused=True)  # noqa: E731
    if compiled:
        spec = [tf.TensorSpec([None, 6, 3]), tf.TensorSpec([None, 8]), tf.TensorSpec([None, 8]),
                tf.TensorSpec([None, 6], tf.bool)]
        fused_run = tf.function(fused_run, input_signature=spec, autograph=False)
    fused = fused_run(x, *state, step_mask)
    for name, index in [("h", 1), ("c", 2)]:  # all masked: the given state, exactly
        np.testing.assert_array_equal(fused[index][3], state[index - 1][3], err_msg=name)
    for a, b in zip(cell, fused, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=1e-5)


def test_fused_lstm_refuses_a_masked_step_after_a_valid_one():
    """The fused path shifts leading masked steps out; a mask with a gap inside the row would run the gap,
    where the masked cell skips it: refused, not computed wrong."""
    encoder = HistoryEncoder("lstm", 4)
    x = tf.zeros([2, 3, 2])
    state = encoder.initial_state(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="a masked step follows a valid one"):
        encoder(x, state, tf.constant([[True, True, True], [True, False, True]]), fused=True)


@pytest.mark.parametrize("compiled", [False, True])
def test_wide_lstm_backward_in_ops_equals_the_kernels(compiled):
    """From OP_BACKWARD_MIN_UNITS units on, the update's LSTM backward pass is written in ops: for 128 units
    over 12 steps, its gradients equal the fused kernel's own, upstream gradients on every hidden state and on
    every cell state included; eagerly and in a compiled graph (where Grappler rewrites the ops, as in the
    update)."""
    x = tf.random.stateless_normal([12, 5, 4], seed=[1, 2])
    h0, c0 = (tf.random.stateless_normal([5, 128], seed=[3, i]) * 0.5 for i in range(2))
    w = tf.random.stateless_normal([132, 512], seed=[4, 5]) * 0.1
    b = tf.random.stateless_normal([512], seed=[6, 7]) * 0.1
    d_hiddens, d_cells = (tf.random.stateless_normal([12, 5, 128], seed=[8, i]) for i in range(2))
    def outputs_and_gradients(run):
        def compute(*inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                hiddens, cells = run(*inputs)
                loss = tf.reduce_sum(hiddens * d_hiddens) + tf.reduce_sum(cells * d_cells)
            return [hiddens, cells, *tape.gradient(loss, inputs)]

        return (tf.function(compute, autograph=False) if compiled else compute)(x, h0, c0, w, b)

    results = [outputs_and_gradients(run) for run in (networks._block_lstm, networks._block_lstm_op_backward)]
    assert networks.OP_BACKWARD_MIN_UNITS <= 128
    for kernel, ops in zip(*results, strict=True):
        np.testing.assert_allclose(ops.numpy(), kernel.numpy(), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["none", "lstm", "gru"])
@pytest.mark.parametrize("fused", [False, True])
def test_outputs_from_a_step_are_the_tail_of_all_outputs(kind, fused):
    """``outputs_from`` (the target networks' h_{t+1}) gives exactly the later outputs, and the same state."""
    encoder = HistoryEncoder(kind, 8)
    x = tf.random.stateless_normal([4, 6, 3], seed=[1, 7])
    state = encoder.initial_state(4)
    every, final = encoder(x, state, fused=fused)
    tail, tail_final = encoder(x, state, fused=fused, outputs_from=2)
    np.testing.assert_array_equal(tail.numpy(), every[:, 2:].numpy())
    for a, b in zip(final, tail_final, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("fused", [False, True])
def test_trained_encoder_gradients_equal_keras(kind, fused):
    """The encoder's gradients, unrolled cell and fused kernel alike, equal those of Keras's own LSTM/GRU
    given the same weights (``fused`` only changes how an LSTM runs; a GRU is always unrolled)."""
    import keras

    encoder = HistoryEncoder(kind, 8)
    x = tf.random.stateless_normal([4, 6, 3], seed=[6, 7])
    zero = encoder.initial_state(4)
    encoder(x, zero)
    reference = (keras.layers.LSTM if kind == "lstm" else keras.layers.GRU)(8, return_sequences=True)
    reference(x)
    reference.set_weights(encoder.get_weights())
    weights = tf.range(1.0, 9.0)
    with tf.GradientTape(persistent=True) as tape:
        mine = tf.reduce_sum(encoder(x, zero, fused=fused)[0] * weights)
        theirs = tf.reduce_sum(reference(x) * weights)
    for a, b in zip(tape.gradient(mine, encoder.trainable_variables),
                    tape.gradient(theirs, reference.trainable_variables), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=1e-4)
