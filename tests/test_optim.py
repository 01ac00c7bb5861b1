"""FusedAdam (one fused kernel op per variable) against Keras's Adam and against Adam written out in numpy."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from rdpg_cli.optim import FusedAdam

LEARNING_RATE, BETA_1, BETA_2, EPSILON = 1e-2, 0.9, 0.999, 1e-7
SHAPES = [(4, 3), (5,)]


def gradients(steps: int = 7, seed: int = 0) -> list[list[np.ndarray]]:
    """Gradients whose scale changes from step to step, from 1e-6 (where epsilon's place in the update shows:
    inside the square root it would dominate) to 10."""
    rng = np.random.default_rng(seed)
    scales = [1e-6, 10.0, 1e-3, 1.0, 1e-6, 0.1, 3.0][:steps]
    return [[(rng.normal(size=shape) * scale).astype(np.float32) for shape in SHAPES] for scale in scales]


def numpy_adam(initial: list[np.ndarray], grads: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Adam as Kingma & Ba's algorithm 1 with the step size folded in (Keras's form): float64 throughout."""
    weights = [w.astype(np.float64) for w in initial]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    for t, step_grads in enumerate(grads, start=1):
        alpha = LEARNING_RATE * np.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)
        for i, g in enumerate(step_grads):
            m[i] = BETA_1 * m[i] + (1 - BETA_1) * g
            v[i] = BETA_2 * v[i] + (1 - BETA_2) * g.astype(np.float64) ** 2
            weights[i] = weights[i] - alpha * m[i] / (np.sqrt(v[i]) + EPSILON)
    return weights


def initial_weights() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_fused_adam_takes_the_steps_of_keras_adam_and_of_adam_in_numpy(compiled: bool):
    grads = gradients()
    fused_vars = [tf.Variable(w) for w in initial_weights()]
    keras_vars = [keras.Variable(w) for w in initial_weights()]
    fused = FusedAdam(LEARNING_RATE, fused_vars, BETA_1, BETA_2, EPSILON)
    reference = keras.optimizers.Adam(LEARNING_RATE, BETA_1, BETA_2, EPSILON)
    reference.build(keras_vars)

    def fused_step(step_grads):
        fused.apply_gradients(zip(step_grads, fused_vars, strict=True))

    step = tf.function(fused_step, autograph=False) if compiled else fused_step
    for step_grads in grads:
        tensors = [tf.constant(g) for g in step_grads]
        step(tensors)
        reference.apply_gradients(zip(tensors, keras_vars, strict=True))
    expected = numpy_adam(initial_weights(), grads)
    for ours, theirs, exact in zip(fused_vars, keras_vars, expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), np.asarray(theirs), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.numpy(), exact, rtol=1e-5, atol=1e-6)
    assert int(fused.iterations.numpy()) == len(grads)


def test_fused_adams_state_is_kept_in_keras_order_and_its_learning_rate_can_be_set():
    variables = [tf.Variable(w) for w in initial_weights()]
    fused = FusedAdam(LEARNING_RATE, variables)
    grads = gradients(steps=2)
    fused.apply_gradients(zip([tf.constant(g) for g in grads[0]], variables, strict=True))
    state = fused.variables
    assert state[0] is fused.iterations and state[1] is fused.learning_rate
    assert [tuple(s.shape) for s in state[2:]] == [SHAPES[0], SHAPES[0], SHAPES[1], SHAPES[1]]  # m, v per variable
    np.testing.assert_allclose(state[2].numpy(), (1 - BETA_1) * grads[0][0], rtol=1e-6)  # the first moment
    np.testing.assert_allclose(state[3].numpy(), (1 - BETA_2) * grads[0][0] ** 2, rtol=1e-4)  # the second
    # A new learning rate takes effect at the next step: zero leaves the weights where they are.
    fused.learning_rate = 0.0
    before = [v.numpy() for v in variables]
    fused.apply_gradients(zip([tf.constant(g) for g in grads[1]], variables, strict=True))
    for variable, old in zip(variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), old)
    assert int(fused.iterations.numpy()) == 2
