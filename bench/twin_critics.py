"""Would batching the twin critics pay? The critic step of two [256, 256] critics, batch 256, two ways.

    python bench/twin_critics.py
    ONEDNN_DEFAULT_FPMATH_MODE=BF16 python bench/twin_critics.py   # let oneDNN use bfloat16 (AMX) inside

``separate``: two networks, each its own plain 2-D matmuls, as rdpg's update does (TensorFlow runs the two
chains side by side on its inter-op threads). ``stacked``: one set of weights [2, in, out] per layer and
batched matmuls, half the ops. Both with the loss, the gradients and one fused Adam op per variable, in one
``tf.function``. Interleaved repeats; prints the median milliseconds per step and, last, their ratio.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import header, median, quiet_tensorflow

quiet_tensorflow()

import tensorflow as tf  # noqa: E402

from rdpg_cli.optim import FusedAdam  # noqa: E402  (rdpg's own optimizer: one ResourceApplyAdam per variable)

BATCH, INPUT, HIDDEN = 256, 4, 256  # Pendulum: 3 observation + 1 action inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=300, help="critic steps per timed repeat")
    args = parser.parse_args()
    fpmath = os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE", "default")
    header(f"twin critics, stacked vs separate; oneDNN fpmath {fpmath}")
    rng = np.random.default_rng(0)

    def variable(*shape: int) -> tf.Variable:
        return tf.Variable(rng.normal(size=shape).astype(np.float32) * 0.05)

    separate = [[variable(INPUT, HIDDEN), variable(HIDDEN), variable(HIDDEN, HIDDEN), variable(HIDDEN),
                 variable(HIDDEN, 1), variable(1)] for _ in range(2)]
    separate_flat = [v for critic in separate for v in critic]
    stacked = [variable(2, INPUT, HIDDEN), variable(2, 1, HIDDEN), variable(2, HIDDEN, HIDDEN),
               variable(2, 1, HIDDEN), variable(2, HIDDEN, 1), variable(2, 1, 1)]

    adam_separate, adam_stacked = FusedAdam(1e-3, separate_flat), FusedAdam(1e-3, stacked)

    def mlp(x, w):
        h = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w[0]), w[1]))
        h = tf.nn.relu(tf.nn.bias_add(tf.matmul(h, w[2]), w[3]))
        return tf.nn.bias_add(tf.matmul(h, w[4]), w[5])

    @tf.function
    def separate_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.add_n([tf.reduce_mean(tf.square(mlp(x, critic) - y)) for critic in separate])
        adam_separate.apply_gradients(zip(tape.gradient(loss, separate_flat), separate_flat, strict=True))
        return loss

    @tf.function
    def stacked_step(x, y):
        with tf.GradientTape() as tape:
            h = tf.nn.relu(tf.einsum("bi,cih->cbh", x, stacked[0]) + stacked[1])
            h = tf.nn.relu(tf.matmul(h, stacked[2]) + stacked[3])
            q = tf.matmul(h, stacked[4]) + stacked[5]  # [2, batch, 1]
            loss = tf.reduce_sum(tf.reduce_mean(tf.square(q - y), axis=[1, 2]))
        adam_stacked.apply_gradients(zip(tape.gradient(loss, stacked), stacked, strict=True))
        return loss

    x = tf.constant(rng.normal(size=(BATCH, INPUT)).astype(np.float32))
    y = tf.constant(rng.normal(size=(BATCH, 1)).astype(np.float32))
    steps = {"separate": separate_step, "stacked": stacked_step}
    for step in steps.values():
        for _ in range(50):
            step(x, y)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step(x, y)
            step(x, y).numpy()
            times[name].append((time.perf_counter() - start) / (args.steps + 1) * 1e3)

    for name, values in times.items():
        print(f"{name:>9}: {median(values):.3f} ms per critic step (median of {args.repeats})")
    print(f"stacked vs separate twin critics: {median(times['separate']) / median(times['stacked']):.2f}x "
          f"({median(times['stacked']):.2f} vs {median(times['separate']):.2f} ms per critic step, "
          f"median of {args.repeats})")


if __name__ == "__main__":
    main()
