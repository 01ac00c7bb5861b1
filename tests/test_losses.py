"""The maths of DESIGN §2–3 as pure functions, checked against numpy written independently here."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from rdpg_cli import losses

# ----------------------------------------------------------------------------------------------------------
# Independent references (plain numpy / Python loops, float64), written from DESIGN §2 and §3.


def reference_invert(dqda: np.ndarray, action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """DESIGN §2, one element at a time: g' = g (hi - a) / (hi - lo) if g > 0, else g (a - lo) / (hi - lo)."""
    dqda = np.asarray(dqda, np.float64)
    action = np.asarray(action, np.float64)
    low = np.broadcast_to(np.asarray(low, np.float64), dqda.shape[-1:])
    high = np.broadcast_to(np.asarray(high, np.float64), dqda.shape[-1:])
    out = np.empty_like(dqda)
    for index in np.ndindex(dqda.shape):
        i = index[-1]
        g, a, lo, hi = dqda[index], action[index], low[i], high[i]
        if g > 0:
            out[index] = g * (hi - a) / (hi - lo)
        else:
            out[index] = g * (a - lo) / (hi - lo)
    return out


def reference_huber(error: np.ndarray, delta: float | None) -> np.ndarray:
    """Huber: 0.5 e^2 in the quadratic regime, delta (|e| - delta / 2) beyond it; plain e^2 (MSE) without a
    delta, as DESIGN §3 says."""
    error = np.asarray(error, np.float64)
    if delta is None:
        return error**2
    return np.where(np.abs(error) <= delta, 0.5 * error**2, delta * (np.abs(error) - 0.5 * delta))


def tf32(x) -> tf.Tensor:
    return tf.constant(np.asarray(x, np.float32))


def random_case(seed: int, shape: tuple[int, ...], low: np.ndarray, high: np.ndarray):
    """Gradients of both signs (some exactly 0) and actions spread well past both bounds."""
    rng = np.random.default_rng(seed)
    dqda = rng.normal(size=shape).astype(np.float32)
    dqda[rng.random(shape) < 0.15] = 0.0
    mid, width = (high + low) / 2, high - low
    action = (mid + width * rng.uniform(-1.5, 1.5, size=shape)).astype(np.float32)  # ~1/3 outside the bounds
    return dqda, action


PER_DIM_LOW = np.array([-2.0, 0.0, -1.0], np.float32)
PER_DIM_HIGH = np.array([2.0, 5.0, 3.0], np.float32)

# ----------------------------------------------------------------------------------------------------------
# invert_gradients


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape", [(64, 3), (16, 7, 3), (3,)], ids=["batch", "batch_x_time", "single"])
def test_invert_gradients_matches_reference_with_per_dimension_bounds(seed, shape):
    dqda, action = random_case(seed, shape, PER_DIM_LOW, PER_DIM_HIGH)
    assert np.any((action < PER_DIM_LOW) | (action > PER_DIM_HIGH)), "the case must include out-of-bound actions"
    assert np.any(dqda == 0.0) or dqda.size < 10
    got = losses.invert_gradients(tf32(dqda), tf32(action), tf32(PER_DIM_LOW), tf32(PER_DIM_HIGH)).numpy()
    assert got.shape == shape
    np.testing.assert_allclose(got, reference_invert(dqda, action, PER_DIM_LOW, PER_DIM_HIGH),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_invert_gradients_matches_reference_with_scalar_like_bounds(seed):
    low, high = np.array([-1.0], np.float32), np.array([1.0], np.float32)
    dqda, action = random_case(seed, (32, 5, 1), low, high)
    got = losses.invert_gradients(tf32(dqda), tf32(action), tf32(low), tf32(high)).numpy()
    np.testing.assert_allclose(got, reference_invert(dqda, action, low, high), rtol=1e-5, atol=1e-6)


def test_invert_gradients_hand_computed():
    low, high = tf32([-2.0, 0.0, -1.0]), tf32([2.0, 5.0, 3.0])  # widths 4, 5, 4
    dqda = tf32([[1.0, 2.0, -3.0],
                 [-4.0, -1.0, 2.0],
                 [0.0, 0.0, 0.0]])
    action = tf32([[0.0, 6.0, -2.0],
                   [1.0, 0.0, 4.0],
                   [9.0, -9.0, 1.0]])
    expected = [
        # 1 * (2 - 0) / 4 = 0.5;  2 * (5 - 6) / 5 = -0.4 (past high: push back down);
        # -3 * (-2 - (-1)) / 4 = 0.75 (past low and Q wants lower: push back up)
        [0.5, -0.4, 0.75],
        # -4 * (1 - (-2)) / 4 = -3;  -1 * (0 - 0) / 5 = 0 (at the low bound: no push below it);
        # 2 * (3 - 4) / 4 = -0.5 (past high)
        [-3.0, 0.0, -0.5],
        # a zero gradient stays exactly zero, wherever the action is
        [0.0, 0.0, 0.0],
    ]
    got = losses.invert_gradients(dqda, action, low, high).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


def test_invert_gradients_zero_gradient_is_exactly_zero_and_finite():
    dqda = tf.zeros([4, 2, 3])
    action = tf32(np.full([4, 2, 3], 1.0e6))
    got = losses.invert_gradients(dqda, action, tf32(PER_DIM_LOW), tf32(PER_DIM_HIGH)).numpy()
    assert np.all(np.isfinite(got))
    assert np.all(got == 0.0)


def test_invert_gradients_direction_inside_and_outside():
    """Inside the bounds the sign of g is kept; past the bound Q is pushing towards, the sign flips."""
    low, high = tf32([-2.0]), tf32([2.0])
    g = tf32([[1.0], [1.0], [-1.0], [-1.0]])
    a = tf32([[0.5], [2.5], [0.5], [-2.5]])
    got = losses.invert_gradients(g, a, low, high).numpy()[:, 0]
    assert got[0] > 0 and got[1] < 0 and got[2] < 0 and got[3] > 0


# ----------------------------------------------------------------------------------------------------------
# actor_output_gradient: the mean over samples is taken once


@pytest.mark.parametrize("invert", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_actor_weight_gradient_is_mean_over_valid_samples_taken_once(seed, invert):
    """A tiny linear actor a = s W (per step, on [B, T] samples); its weight gradient from the upstream
    gradient must be  -mean over the valid samples of  s^T g'  (minimising it ascends Q).

    A version that divided by n twice (e.g. dQ/da taken from the *mean* of Q, then /n again here) would give
    this divided by n = 13 valid samples: the assert below fails for it by a factor 13, far beyond rtol.
    """
    rng = np.random.default_rng(seed)
    batch, time, features = 4, 5, 6
    low, high = PER_DIM_LOW, PER_DIM_HIGH
    states = rng.normal(size=(batch, time, features)).astype(np.float32)
    weights = tf.Variable(rng.normal(scale=2.0, size=(features, 3)).astype(np.float32))
    dqda = rng.normal(size=(batch, time, 3)).astype(np.float32)
    mask = np.zeros((batch, time), np.float32)
    mask.flat[rng.permutation(batch * time)[:13]] = 1.0  # 13 valid samples, 7 padded
    with tf.GradientTape() as tape:
        action = tf.einsum("btk,kd->btd", tf32(states), weights)
    upstream = losses.actor_output_gradient(tf32(dqda), action, tf32(low), tf32(high), tf32(mask), invert)
    got = tape.gradient(action, weights, output_gradients=upstream).numpy()

    a = states.astype(np.float64) @ weights.numpy().astype(np.float64)
    assert np.any((a < low) | (a > high)), "some actions must lie outside the bounds"
    g_prime = reference_invert(dqda, a, low, high) if invert else dqda.astype(np.float64)
    ascent = np.zeros((features, 3))
    n = 0
    for b in range(batch):
        for t in range(time):
            if mask[b, t]:
                ascent += np.outer(states[b, t], g_prime[b, t])  # (da/dW)^T g' for a = s W
                n += 1
    assert n == 13
    expected = -ascent / n
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-5)


def test_actor_output_gradient_zero_for_padded_steps_and_no_nan_when_nothing_valid():
    dqda, action = tf.ones([2, 3, 1]), tf.zeros([2, 3, 1])
    mask = tf32([[1, 0, 0], [0, 0, 1]])
    got = losses.actor_output_gradient(dqda, action, tf32([-2.0]), tf32([2.0]), mask, invert=True).numpy()
    # valid entries: -(1 * (2 - 0) / 4) / 2 = -0.25; padded entries: 0
    np.testing.assert_allclose(got[..., 0], [[-0.25, 0, 0], [0, 0, -0.25]])
    nothing = losses.actor_output_gradient(dqda, action, tf32([-2.0]), tf32([2.0]), tf.zeros([2, 3]), True)
    assert np.all(nothing.numpy() == 0.0)


# ----------------------------------------------------------------------------------------------------------
# critic loss and TD target


@pytest.mark.parametrize("delta", [None, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("seed", range(3))
def test_critic_loss_matches_reference(seed, delta):
    rng = np.random.default_rng(seed)
    q = rng.normal(scale=2.0, size=(6, 4)).astype(np.float32)
    target = rng.normal(scale=2.0, size=(6, 4)).astype(np.float32)
    mask = (rng.random((6, 4)) < 0.7).astype(np.float32)
    mask[0, 0] = 1.0
    error = q.astype(np.float64) - target
    if delta is not None:
        assert np.any(np.abs(error) < delta) and np.any(np.abs(error) > delta), "both Huber regimes"
    expected = np.sum(reference_huber(error, delta) * mask) / np.sum(mask)  # mean over valid steps, once
    got = losses.critic_loss(tf32(q), tf32(target), tf32(mask), delta).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_critic_loss_hand_computed():
    q = tf32([[1.0, 5.0, 0.0, 100.0]])
    target = tf32([[0.5, 2.0, 0.0, -100.0]])
    mask = tf32([[1.0, 1.0, 1.0, 0.0]])  # the last step is padding: its huge error must not count
    # Huber, delta 1: |e| = 0.5 -> 0.5 * 0.25 = 0.125;  |e| = 3 -> 1 * (3 - 0.5) = 2.5;  |e| = 0 -> 0
    # mean over the 3 valid steps: (0.125 + 2.5 + 0) / 3 = 0.875
    np.testing.assert_allclose(losses.critic_loss(q, target, mask, 1.0).numpy(), 0.875, rtol=1e-6)
    # mean squared error (delta None): (0.25 + 9 + 0) / 3 = 3.083333...
    np.testing.assert_allclose(losses.critic_loss(q, target, mask, None).numpy(), 9.25 / 3, rtol=1e-6)


def test_critic_loss_ignores_padded_steps():
    rng = np.random.default_rng(7)
    q = rng.normal(size=(5, 3)).astype(np.float32)
    target = rng.normal(size=(5, 3)).astype(np.float32)
    mask = np.ones((5, 3), np.float32)
    mask[:, 2] = 0.0
    mask[4] = 0.0
    base = losses.critic_loss(tf32(q), tf32(target), tf32(mask), 1.0).numpy()
    q2, target2 = q.copy(), target.copy()
    q2[mask == 0] = 1.0e4
    target2[mask == 0] = -1.0e4
    assert losses.critic_loss(tf32(q2), tf32(target2), tf32(mask), 1.0).numpy() == pytest.approx(base, rel=1e-6)
    # the same as the plain mean over the valid entries only
    expected = reference_huber(q[mask == 1].astype(np.float64) - target[mask == 1], 1.0).mean()
    assert base == pytest.approx(expected, rel=1e-5)


def test_critic_loss_does_not_differentiate_through_the_target():
    q, target = tf.Variable([[1.0, 2.0]]), tf.Variable([[0.0, 0.0]])
    with tf.GradientTape(persistent=True) as tape:
        loss = losses.critic_loss(q, target, tf.ones([1, 2]), None)
    assert tape.gradient(loss, target) is None
    # d/dq of mean(e^2) over 2 samples = 2 e / 2 = e
    np.testing.assert_allclose(tape.gradient(loss, q).numpy(), [[1.0, 2.0]], rtol=1e-6)


def test_td_target_terminated_stops_bootstrap_truncated_does_not():
    reward = tf32([[1.0, 1.0, 1.0]])
    next_q = tf32([[10.0, 10.0, 10.0]])
    terminated = tf32([[0.0, 1.0, 0.0]])  # the third step is a time-limit cut: not terminated
    got = losses.td_target(reward, terminated, next_q, 0.9).numpy()
    # 1 + 0.9 * 10 = 10;  1 + 0.9 * 0 * 10 = 1;  truncated still bootstraps: 10
    np.testing.assert_allclose(got, [[10.0, 1.0, 10.0]], rtol=1e-6)


def test_td_target_scales_the_reward_not_the_bootstrap():
    got = losses.td_target(tf32([[-4.0, -4.0]]), tf32([[0.0, 1.0]]), tf32([[-20.0, -20.0]]), 0.9, 0.1).numpy()
    # 0.1 * -4 + 0.9 * -20 = -18.4;  terminated: 0.1 * -4 = -0.4
    np.testing.assert_allclose(got, [[-18.4, -0.4]], rtol=1e-6)


def test_td_target_accepts_boolean_terminated():
    got = losses.td_target(tf32([0.5, 0.5]), tf.constant([True, False]), tf32([2.0, 2.0]), 0.5).numpy()
    np.testing.assert_allclose(got, [0.5, 1.5])


# ----------------------------------------------------------------------------------------------------------
# masked_mean, clipping, out-of-bounds share, target updates


def test_masked_mean():
    values = tf32([[1.0, 2.0, 100.0], [3.0, -50.0, 4.0]])
    mask = tf32([[1, 1, 0], [1, 0, 1]])
    assert losses.masked_mean(values, mask).numpy() == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert losses.masked_mean(values, tf.constant([[True, False, False], [False, False, False]])).numpy() == 1.0
    assert losses.masked_mean(values, tf.zeros([2, 3])).numpy() == 0.0  # nothing valid: 0, not NaN


def test_clip_gradients_global_norm_then_elementwise():
    grads = [tf32([3.0, 4.0]), tf32([[0.0]])]  # global norm 5
    # global norm 2.5 -> scale 0.5 -> [1.5, 2.0], [0]; then elementwise to +-1.8 -> [1.5, 1.8]
    # (the other order would give [1.8, 1.8] -> norm 2.546 -> [1.768, 1.768]: a different answer)
    got = losses.clip_gradients(grads, clipnorm=2.5, clipvalue=1.8)
    np.testing.assert_allclose(got[0].numpy(), [1.5, 1.8], rtol=1e-6)
    np.testing.assert_allclose(got[1].numpy(), [[0.0]])


def test_clip_gradients_each_alone_and_none():
    rng = np.random.default_rng(3)
    arrays = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)]
    grads = [tf32(a) for a in arrays]
    norm = np.sqrt(sum(np.sum(a.astype(np.float64) ** 2) for a in arrays))
    by_norm = losses.clip_gradients(grads, clipnorm=norm / 4, clipvalue=None)
    for g, a in zip(by_norm, arrays, strict=True):
        np.testing.assert_allclose(g.numpy(), a / 4, rtol=1e-5)
    by_value = losses.clip_gradients(grads, clipnorm=None, clipvalue=0.3)
    for g, a in zip(by_value, arrays, strict=True):
        np.testing.assert_allclose(g.numpy(), np.clip(a, -0.3, 0.3))
    untouched = losses.clip_gradients(grads, None, None)
    for g, a in zip(untouched, arrays, strict=True):
        np.testing.assert_array_equal(g.numpy(), a)
    # a norm below the limit is left alone
    small = losses.clip_gradients(grads, clipnorm=norm * 2, clipvalue=None)
    for g, a in zip(small, arrays, strict=True):
        np.testing.assert_allclose(g.numpy(), a, rtol=1e-6)


def test_out_of_bounds_share():
    low, high = tf32([-2.0, 0.0]), tf32([2.0, 5.0])
    action = tf32([[[3.0, 1.0], [0.0, -1.0]],  # 1 of 2 outside; 1 of 2 outside
                   [[0.0, 1.0], [9.0, 9.0]]])  # 0 of 2 outside; padded step
    mask = tf32([[1, 1], [1, 0]])
    # per step: 0.5, 0.5, 0.0 (the padded step's 1.0 is masked out) -> mean 1/3
    assert losses.out_of_bounds_share(action, low, high, mask).numpy() == pytest.approx(1 / 3)
    on_bounds = tf32([[[-2.0, 5.0]]])  # exactly on a bound is inside
    assert losses.out_of_bounds_share(on_bounds, low, high, tf.ones([1, 1])).numpy() == 0.0


def test_soft_and_hard_update():
    target = [tf.Variable([1.0, 2.0]), tf.Variable([[0.0]])]
    source = [tf.Variable([3.0, -2.0]), tf.Variable([[10.0]])]
    losses.soft_update(target, source, 0.25)
    # (1 - 0.25) * t + 0.25 * s
    np.testing.assert_allclose(target[0].numpy(), [1.5, 1.0])
    np.testing.assert_allclose(target[1].numpy(), [[2.5]])
    np.testing.assert_array_equal(source[0].numpy(), [3.0, -2.0])  # the source is untouched
    losses.hard_update(target, source)
    for t, s in zip(target, source, strict=True):
        np.testing.assert_array_equal(t.numpy(), s.numpy())
    with pytest.raises(ValueError):
        losses.soft_update(target, source[:1], 0.5)
