"""Actor and critic networks, feed-forward and recurrent, with one contract for both.

Inputs are ``[batch, time, features]``; ``call(history, state) -> (output, state)``; ``initial_state(batch)``
gives the zero state. Feed-forward networks have the empty state ``()`` and treat time like batch, which is
what lets DDPG be RDPG with sequence length 1 instead of a second code path.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rdpg_cli.config import NetworkConfig

State = tuple[tf.Tensor, ...]

# DDPG (Lillicrap et al. 2015): small final-layer weights so initial outputs and Q estimates are near zero.
FINAL_INIT = 3.0e-3


def _final_initializer() -> keras.initializers.Initializer:
    return keras.initializers.RandomUniform(-FINAL_INIT, FINAL_INIT)


class HistoryEncoder(keras.layers.Layer):
    """The recurrent layer that turns the history into a summary ``h_t``; absent for feed-forward nets.

    LSTM and GRU cells with Keras's own weight layout and gate equations (LSTM gates i, f, c, o; GRU with
    ``reset_after``, gates z, r, h), so a standard Keras LSTM/GRU given the same weights computes the same
    function (exports rely on this). Sequences are unrolled in Python over the short, static window, with
    the input projection of all steps in one matmul; in the agent's update, unmasked LSTM sequences (the
    trained steps and the target networks) run in TensorFlow's fused kernel. Both are several times faster
    on a CPU than Keras's ``while_loop`` RNN for windows of a few dozen steps.
    """

    def __init__(self, kind: str, units: int, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.units = units
        self.gates = {"lstm": 4, "gru": 3}.get(kind, 0)

    def build(self, input_shape) -> None:
        if not self.gates:
            return
        features = int(input_shape[-1])
        width = self.gates * self.units
        self.kernel = self.add_weight(shape=(features, width), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width), initializer="orthogonal", name="recurrent_kernel")
        if self.kind == "lstm":
            # unit_forget_bias: start with the forget gate open so early gradients flow through time.
            def bias_init(shape, dtype=None):
                u = self.units
                return tf.concat([tf.zeros([u]), tf.ones([u]), tf.zeros([2 * u])], axis=0)

            self.bias = self.add_weight(shape=(width,), initializer=bias_init, name="bias")
        else:
            self.bias = self.add_weight(shape=(2, width), initializer="zeros", name="bias")

    @property
    def state_size(self) -> int:
        return {"lstm": 2, "gru": 1}.get(self.kind, 0)

    def initial_state(self, batch_size: int) -> State:
        return tuple(tf.zeros([batch_size, self.units]) for _ in range(self.state_size))

    def call(self, history: tf.Tensor, state: State, step_mask: tf.Tensor | None = None,
             fused: bool = False) -> tuple[tf.Tensor, State]:
        """``step_mask`` [batch, time] (bool): masked steps leave the state (and output) unchanged, so
        steps of another episode at the front of a window do not disturb the zero state the episode
        starts from. ``fused``: an unmasked LSTM sequence runs in TensorFlow's fused kernel (the agent's
        update asks for it); otherwise the cell is unrolled op by op, which every exporter understands."""
        if not self.gates:
            return history, ()
        if self.kind == "lstm" and step_mask is None and fused:
            return self._fused_lstm(history, state)
        steps = history.shape[1]
        bias = self.bias if self.kind == "lstm" else self.bias[0]
        projected = tf.matmul(history, self.kernel) + bias  # [B, T, gates*units], all steps at once
        outputs = []
        state = tuple(state)
        for t in range(steps):
            new_state = self._cell(projected[:, t], state)
            if step_mask is not None:
                keep = step_mask[:, t, None]
                new_state = tuple(tf.where(keep, n, o) for n, o in zip(new_state, state, strict=True))
            state = new_state
            outputs.append(state[0])
        return tf.stack(outputs, axis=1), state

    def _fused_lstm(self, history: tf.Tensor, state: State) -> tuple[tf.Tensor, State]:
        """The whole sequence in TensorFlow's fused LSTM kernel, forward and backward: one op each way
        instead of a dozen per step, which made the recurrent update 1.6x faster (bench/roofline.py).

        ``BlockLSTM`` (V1), not ``BlockLSTMV2``: TF 2.21 registers V1's gradient for V2, whose gates are in
        Keras's order i, f, c, o while V1's are i, c, f, o, so V2's gradients come out wrong by tens of percent.
        V1's forward and gradient agree (tests/test_agent.py checks both against the unrolled cell and Keras);
        it gets the Keras weights with the gate blocks reordered, no forget bias of its own and no clipping."""
        h, c = state
        zeros = tf.zeros([self.units], history.dtype)
        outputs = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.constant(history.shape[1], tf.int64), x=tf.transpose(history, [1, 0, 2]),
            cs_prev=c, h_prev=h, w=_keras_to_block_gates(tf.concat([self.kernel, self.recurrent_kernel], axis=0)),
            wci=zeros, wcf=zeros, wco=zeros, b=_keras_to_block_gates(self.bias), forget_bias=0.0,
            cell_clip=-1.0, use_peephole=False)
        cells, hiddens = outputs[1], outputs[6]  # [time, batch, units]
        return tf.transpose(hiddens, [1, 0, 2]), (hiddens[-1], cells[-1])

    def _cell(self, projected_x: tf.Tensor, state: State) -> State:
        if self.kind == "lstm":
            h, c = state
            z = projected_x + tf.matmul(h, self.recurrent_kernel)
            i, f, g, o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c
        (h,) = state
        inner = tf.matmul(h, self.recurrent_kernel) + self.bias[1]
        x_z, x_r, x_h = tf.split(projected_x, 3, axis=-1)
        r_z, r_r, r_h = tf.split(inner, 3, axis=-1)
        z = tf.sigmoid(x_z + r_z)
        r = tf.sigmoid(x_r + r_r)
        candidate = tf.tanh(x_h + r * r_h)
        return (z * h + (1.0 - z) * candidate,)


def _keras_to_block_gates(weights: tf.Tensor) -> tf.Tensor:
    """LSTM gate blocks along the last axis from Keras's order (i, f, c, o) to the fused kernel's (i, c, f, o)."""
    i, f, c, o = tf.split(weights, 4, axis=-1)
    return tf.concat([i, c, f, o], axis=-1)


def _dense_stack(sizes: list[int], prefix: str) -> list[keras.layers.Layer]:
    return [keras.layers.Dense(n, activation="relu", name=f"{prefix}_{i}") for i, n in enumerate(sizes)]


def _mlp(x: tf.Tensor, hidden: list[keras.layers.Dense], out: keras.layers.Dense) -> tf.Tensor:
    """ReLU hidden layers and a linear output over the last axis of ``x`` (any leading dims).

    Once the layers are built, the arithmetic is written out on 2-D tensors: Keras's Dense on a
    [batch, time, features] input adds casts and reshapes around every matmul, and in a small network
    those ops cost more dispatch time than the arithmetic. The layers still own the weights."""
    if not out.built:
        for layer in hidden:
            x = layer(x)
        return out(x)
    leading = tf.shape(x)[:-1]
    y = tf.reshape(x, [-1, x.shape[-1]])
    for layer in hidden:
        y = tf.nn.relu(tf.nn.bias_add(tf.matmul(y, layer.kernel), layer.bias))
    y = tf.nn.bias_add(tf.matmul(y, out.kernel), out.bias)
    return tf.reshape(y, tf.concat([leading, [out.units]], axis=0))


class Actor(keras.Model):
    """mu(h_t): a linear output (bounding ``invert`` or ``clip``) or one squashed by tanh into the bounds."""

    def __init__(self, config: NetworkConfig, action_dim: int, low: np.ndarray, high: np.ndarray,
                 squash: bool, **kwargs):
        super().__init__(**kwargs)
        self.encoder = HistoryEncoder(config.recurrent, config.units, name="encoder")
        self.hidden = _dense_stack(config.actor_layers, "actor")
        self.out = keras.layers.Dense(action_dim, kernel_initializer=_final_initializer(), name="action")
        self.squash = squash
        self.mid = tf.constant((high + low) / 2.0, tf.float32)
        self.half_range = tf.constant((high - low) / 2.0, tf.float32)

    def initial_state(self, batch_size: int) -> State:
        return self.encoder.initial_state(batch_size)

    def encode(self, history: tf.Tensor, state: State = (), step_mask: tf.Tensor | None = None,
               fused: bool = False) -> tuple[tf.Tensor, State]:
        return self.encoder(history, state, step_mask, fused=fused)

    def head(self, features: tf.Tensor) -> tf.Tensor:
        x = _mlp(features, self.hidden, self.out)
        if self.squash:
            x = self.mid + self.half_range * tf.tanh(x)
        return x

    def call(self, history: tf.Tensor, state: State = ()) -> tuple[tf.Tensor, State]:
        features, state = self.encode(history, state)
        return self.head(features), state


class Critic(keras.Model):
    """Q(h_t, a_t): the history summary (or the observation) joined with the action, to one value."""

    def __init__(self, config: NetworkConfig, **kwargs):
        super().__init__(**kwargs)
        self.encoder = HistoryEncoder(config.recurrent, config.units, name="encoder")
        self.hidden = _dense_stack(config.critic_layers, "critic")
        self.out = keras.layers.Dense(1, kernel_initializer=_final_initializer(), name="q")

    def initial_state(self, batch_size: int) -> State:
        return self.encoder.initial_state(batch_size)

    def encode(self, history: tf.Tensor, state: State = (), step_mask: tf.Tensor | None = None,
               fused: bool = False) -> tuple[tf.Tensor, State]:
        return self.encoder(history, state, step_mask, fused=fused)

    def head(self, features: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
        x = _mlp(tf.concat([features, action], axis=-1), self.hidden, self.out)
        return tf.squeeze(x, axis=-1)

    def call(self, history: tf.Tensor, action: tf.Tensor, state: State = ()) -> tuple[tf.Tensor, State]:
        features, state = self.encode(history, state)
        return self.head(features, action), state


def history_dim(config: NetworkConfig, observation_dim: int, action_dim: int) -> int:
    return observation_dim + (action_dim if config.history == "obs+prev_action" else 0)


def make_history(config: NetworkConfig, observations: tf.Tensor, prev_actions: tf.Tensor) -> tf.Tensor:
    """What the networks read at each step: o_t, or (o_t, a_{t-1}) as in Heess et al. 2015."""
    if config.history == "obs+prev_action":
        return tf.concat([observations, prev_actions], axis=-1)
    return observations
