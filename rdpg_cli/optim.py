"""Adam with TensorFlow's fused kernel: one ``ResourceApplyAdam`` op per variable.

Keras 3's Adam builds about ten elementwise ops per variable; with a dozen small variables per network that is
hundreds of ops per update, and on a CPU each op costs microseconds of dispatch. Same update rule as
``keras.optimizers.Adam`` (bias-corrected step size, epsilon outside the square root), same state
(iteration, learning rate, then momentum and velocity per variable, in the order Keras keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable

import tensorflow as tf


class FusedAdam:
    def __init__(self, learning_rate: float, variables: list, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1.0e-7, name: str = "adam"):
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        with tf.name_scope(name):
            self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
            self._learning_rate = tf.Variable(learning_rate, dtype=tf.float32, trainable=False,
                                              name="learning_rate")
            self.slots = [(tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="momentum"),
                           tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="velocity"))
                          for v in variables]

    @property
    def learning_rate(self) -> tf.Variable:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate.assign(value)

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.iterations, self._learning_rate, *[s for pair in self.slots for s in pair]]

    def apply_gradients(self, grads_and_vars: Iterable) -> None:
        grads_and_vars = list(grads_and_vars)  # the variables it was built for, in that order
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1_power = tf.pow(tf.constant(self.beta_1, tf.float32), step)
        beta_2_power = tf.pow(tf.constant(self.beta_2, tf.float32), step)
        lr = tf.identity(self._learning_rate)
        for (grad, variable), (m, v) in zip(grads_and_vars, self.slots, strict=True):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,  # tf.Variable, or Keras 3's wrapper of one
                m=m.handle, v=v.handle, beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=lr, beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon,
                grad=grad, use_locking=False)
        self.iterations.assign_add(1)
