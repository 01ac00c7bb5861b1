"""The maths of the update as pure functions of tensors, independent of any network.

Shapes: any leading batch/time dims, actions on the last axis. Masks broadcast over the leading dims.
"""

from __future__ import annotations

import tensorflow as tf


def invert_gradients(dqda: tf.Tensor, action: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """Hausknecht & Stone (2016) inverting gradients, elementwise.

    ``dqda`` is the ascent direction dQ/da at the actor's own (unclipped) ``action``. Where Q wants a larger
    action the step is scaled by the room left to the upper bound, otherwise by the room left to the lower
    bound; past a bound the factor turns negative and the push points back inside.
    """
    width = high - low
    towards_high = dqda * (high - action) / width
    towards_low = dqda * (action - low) / width
    return tf.where(dqda > 0, towards_high, towards_low)


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean over the valid entries only (padding never dilutes a mean); 0 when nothing is valid."""
    mask = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def td_target(reward: tf.Tensor, terminated: tf.Tensor, next_q: tf.Tensor, gamma: float,
              reward_scale: float = 1.0) -> tf.Tensor:
    """y = c r + gamma * (1 - terminated) * Q'(s', mu'(s')), c the reward scale (Q is then learned in units
    of c times the return). A time-limit cut (truncated) still bootstraps."""
    if reward_scale != 1.0:  # no op in the graph for the default: the update is dispatch-bound on a CPU
        reward = reward_scale * reward
    return reward + gamma * (1.0 - tf.cast(terminated, reward.dtype)) * next_q


def critic_loss(q: tf.Tensor, target: tf.Tensor, mask: tf.Tensor, delta_clip: float | None) -> tf.Tensor:
    """Huber loss with threshold ``delta_clip`` (0.5 e² inside, linear outside), or the mean squared error
    e² when None (DESIGN §3); masked, averaged once over the valid samples."""
    error = q - tf.stop_gradient(target)
    if delta_clip is None:
        per_sample = tf.square(error)
    else:
        abs_error = tf.abs(error)
        quadratic = tf.minimum(abs_error, delta_clip)
        per_sample = 0.5 * tf.square(quadratic) + delta_clip * (abs_error - quadratic)
    return masked_mean(per_sample, mask)


def actor_output_gradient(
    dqda: tf.Tensor, action: tf.Tensor, low: tf.Tensor, high: tf.Tensor, mask: tf.Tensor, invert: bool
) -> tf.Tensor:
    """The upstream gradient to feed the actor's output so that *minimising* gives the DPG ascent step.

    ``-g' * mask / n``: the mean over the ``n`` valid samples is taken here, once. ``dqda`` must be the
    per-sample dQ/da (the gradient of the *sum* of Q, not of its mean), so nothing divides by n twice.
    """
    g = invert_gradients(dqda, action, low, high) if invert else dqda
    mask = tf.cast(mask, g.dtype)[..., None]
    n = tf.maximum(tf.reduce_sum(mask), 1.0)
    return -g * mask / n


def clip_gradients(
    grads: list[tf.Tensor], clipnorm: float | None, clipvalue: float | None
) -> list[tf.Tensor]:
    """Optional clipping of the actor's gradients, after inversion: global norm, then elementwise."""
    if clipnorm is not None:
        grads, _ = tf.clip_by_global_norm(grads, clipnorm)
    if clipvalue is not None:
        grads = [tf.clip_by_value(g, -clipvalue, clipvalue) for g in grads]
    return list(grads)


def out_of_bounds_share(action: tf.Tensor, low: tf.Tensor, high: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Share of valid actor outputs (per action component) that lie outside the bounds."""
    outside = tf.cast(tf.logical_or(action < low, action > high), action.dtype)
    per_step = tf.reduce_mean(outside, axis=-1)
    return masked_mean(per_step, mask)


def soft_update(target_vars: list[tf.Variable], source_vars: list[tf.Variable], tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, as target -= tau * (target - source) in one fused op."""
    for t, s in zip(target_vars, source_vars, strict=True):
        tf.raw_ops.ResourceApplyGradientDescent(var=t.handle, alpha=tf.constant(tau, t.dtype), delta=t - s)


def hard_update(target_vars: list[tf.Variable], source_vars: list[tf.Variable]) -> None:
    for t, s in zip(target_vars, source_vars, strict=True):
        t.assign(s)
