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
    the input projection of all steps in one matmul; in the agent's update, LSTM sequences (the burn-in,
    the trained steps, the target networks) run in TensorFlow's fused kernel (wide ones back-propagate
    through TensorFlow ops, ``_block_lstm_op_backward``). Both are several times faster
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
             fused: bool = False, outputs_from: int = 0) -> tuple[tf.Tensor, State]:
        """``step_mask`` [batch, time] (bool): masked steps leave the state (and output) unchanged, so
        steps of another episode at the front of a window do not disturb the zero state the episode
        starts from. ``fused``: an LSTM sequence runs in TensorFlow's fused kernel (the agent's update asks
        for it), masked only if its masked steps lead each row (the burn-in's); otherwise the cell is unrolled
        op by op, which every exporter understands.
        ``outputs_from``: the outputs of the steps from this one on (the target networks need h_{t+1} only);
        cut before the outputs are laid out batch-major, which saves copying the others."""
        if not self.gates:
            return history[:, outputs_from:], ()
        if self.kind == "lstm" and fused:
            if step_mask is None:
                return self._fused_lstm(history, state, outputs_from)
            return self._fused_lstm_masked_prefix(history, state, step_mask, outputs_from)
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
        return tf.stack(outputs[outputs_from:], axis=1), state

    def _fused_lstm(self, history: tf.Tensor, state: State, outputs_from: int = 0) -> tuple[tf.Tensor, State]:
        """The whole sequence in TensorFlow's fused LSTM kernel, forward and backward: one op each way
        instead of a dozen per step, which made the recurrent update 1.6x faster (bench/roofline.py). From
        OP_BACKWARD_MIN_UNITS units on, the backward pass is ``_block_lstm_op_backward``'s instead.

        ``BlockLSTM`` (V1), not ``BlockLSTMV2``: TF 2.21 registers V1's gradient for V2, whose gates are in
        Keras's order i, f, c, o while V1's are i, c, f, o, so V2's gradients come out wrong by tens of percent.
        V1's forward and gradient agree (tests/test_agent.py checks both against the unrolled cell and Keras);
        it gets the Keras weights with the gate blocks reordered, no forget bias of its own and no clipping."""
        h, c = state
        w, b = self._block_weights()
        x = tf.transpose(history, [1, 0, 2])
        run = _block_lstm_op_backward if self.units >= OP_BACKWARD_MIN_UNITS else _block_lstm
        hiddens, cells = run(x, h, c, w, b)  # [time, batch, units]
        return tf.transpose(hiddens[outputs_from:], [1, 0, 2]), (hiddens[-1], cells[-1])

    def _fused_lstm_masked_prefix(self, history: tf.Tensor, state: State, step_mask: tf.Tensor,
                                  outputs_from: int = 0) -> tuple[tf.Tensor, State]:
        """The masked unroll in the fused kernel, for masks whose masked steps lead each row (the agent's burn-in:
        steps of the episode before, then the window's own): each row's valid steps are shifted to the front and
        run from the given state, and every step then reads the state after the valid steps up to it (the given
        state before the first). The same function as the masked cell (tests/test_agent.py); one kernel op and
        two gathers instead of a dozen ops per step: ``pendulum-novel``'s update 1.06-1.08x faster in wall time,
        1.09x in CPU time (README)."""
        h0, c0 = state
        steps = history.shape[1]
        valid = tf.cast(step_mask, tf.int32)
        # The contract, checked: a masked step after a valid one would be run here, not skipped as the cell skips it.
        leading_only = tf.debugging.assert_greater_equal(
            valid[:, 1:], valid[:, :-1], message="fused LSTM: a masked step follows a valid one")
        with tf.control_dependencies([leading_only]):
            masked = steps - tf.reduce_sum(valid, axis=1, keepdims=True)  # [B, 1] leading masked steps
        positions = tf.range(steps)[None, :]
        shifted = tf.gather(history, tf.minimum(positions + masked, steps - 1), batch_dims=1)
        w, b = self._block_weights()
        hiddens, cells = _block_lstm(tf.transpose(shifted, [1, 0, 2]), h0, c0, w, b)  # [time, batch, units]
        # Step t of the row has run max(t + 1 - masked, 0) valid steps: index into [given state, step 1, ...].
        runs = tf.maximum(positions + 1 - masked, 0)[:, outputs_from:]
        hiddens = tf.gather(tf.transpose(tf.concat([h0[None], hiddens], axis=0), [1, 0, 2]), runs, batch_dims=1)
        last_cell = tf.gather(tf.transpose(tf.concat([c0[None], cells], axis=0), [1, 0, 2]), runs[:, -1:],
                              batch_dims=1)[:, 0]
        return hiddens, (hiddens[:, -1], last_cell)

    def _block_weights(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The LSTM's weights as the fused kernel takes them: input and recurrent kernels stacked, gate blocks
        reordered."""
        w = _keras_to_block_gates(tf.concat([self.kernel, self.recurrent_kernel], axis=0))
        return w, _keras_to_block_gates(self.bias)

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


# From this many LSTM units on, the fused kernel's backward pass is replaced by one written in TensorFlow ops
# (``_block_lstm_op_backward``). Measured forward + backward of one encoder, 32 rows (README): 128 units over
# 32 steps 7.6 -> 6.3 ms, over 16 steps 4.7 -> 4.0 ms, 256 units 28.1 -> 19.0 ms; 64 units over 16 steps
# 1.5 -> 1.7 ms and over 32 steps 2.6 -> 2.9 ms (there the kernel's single op beats a few hundred small ones).
OP_BACKWARD_MIN_UNITS = 128


def _block_lstm_raw(x, h0, c0, w, b):
    """TensorFlow's fused LSTM (``BlockLSTM`` V1: gates i, c, f, o) over time-major ``x`` [time, batch, in];
    its seven outputs, each [time, batch, units]: i, cs, f, o, ci, co, h (gates after their nonlinearity,
    co = tanh(cs))."""
    zeros = tf.zeros([h0.shape[-1]], x.dtype)
    return tf.raw_ops.BlockLSTM(
        seq_len_max=tf.constant(x.shape[0], tf.int64), x=x, cs_prev=c0, h_prev=h0, w=w, wci=zeros, wcf=zeros,
        wco=zeros, b=b, forget_bias=0.0, cell_clip=-1.0, use_peephole=False)


def _block_lstm(x, h0, c0, w, b):
    """Hidden states and cell states of ``_block_lstm_raw``, differentiated by the kernel's own gradient."""
    outputs = _block_lstm_raw(x, h0, c0, w, b)
    return outputs[6], outputs[1]


@tf.custom_gradient
def _block_lstm_op_backward(x, h0, c0, w, b):
    """``_block_lstm`` whose backward pass is TensorFlow ops: the recurrence one time step at a time (one
    [batch, 4·units] x [4·units, units] matmul and a few elementwise ops each), then the weight and bias
    gradients of all steps as one matmul. ``BlockLSTMGrad`` forms the weight gradient step by step in small
    products, which for wide layers costs more than the ops' dispatch (OP_BACKWARD_MIN_UNITS)."""
    i, cs, f, o, ci, co, h = _block_lstm_raw(x, h0, c0, w, b)
    steps, inputs = x.shape[0], x.shape[-1]

    def backward(d_hiddens, d_cells):
        c_prev = tf.concat([c0[None], cs[:-1]], axis=0)
        # d(gates before their nonlinearity) = [dcs, dcs, dcs, dh] * this, per step (gate order i, c, f, o).
        gate_factors = tf.concat([ci * i * (1.0 - i), i * (1.0 - ci * ci), c_prev * f * (1.0 - f),
                                  co * o * (1.0 - o)], axis=-1)
        cell_factor = o * (1.0 - co * co)  # d cs / d h through h = o * tanh(cs)
        # [4·units, units], transposed once and kept that way: left as a plain transpose, Grappler folds it into
        # every step's matmul (transpose_b), which oneDNN runs ~15 % slower on these small shapes.
        recurrent_t = tf.raw_ops.Snapshot(input=tf.transpose(w[inputs:]))
        dh_next, dc_next = tf.zeros_like(h0), tf.zeros_like(c0)
        d_gates = [None] * steps
        for t in reversed(range(steps)):
            dh = dh_next if d_hiddens is None else d_hiddens[t] + dh_next
            dcs = dh * cell_factor[t] + dc_next
            if d_cells is not None:  # only the final cell state is ever used: its gradient, if any, enters here
                dcs += d_cells[t]
            d_gates[t] = tf.concat([dcs, dcs, dcs, dh], axis=-1) * gate_factors[t]
            dh_next = tf.matmul(d_gates[t], recurrent_t)
            dc_next = dcs * f[t]
        d_gates = tf.stack(d_gates)  # [time, batch, 4·units]
        flat_gates = tf.reshape(d_gates, [-1, w.shape[-1]])
        # The bias gradient (the gates' sum over steps and rows) comes out of the weight gradient's matmul as
        # one more row, from a column of ones: a column sum of [time·batch, 4·units] alone took ~0.35 ms.
        xh1 = tf.concat([x, tf.concat([h0[None], h[:-1]], axis=0), tf.ones_like(x[..., :1])], axis=-1)
        dwb = tf.matmul(tf.reshape(xh1, [-1, w.shape[0] + 1]), flat_gates, transpose_a=True)
        dx = tf.reshape(tf.matmul(flat_gates, w[:inputs], transpose_b=True), tf.shape(x))
        return dx, dh_next, dc_next, dwb[:-1], dwb[-1]

    return (h, cs), backward


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
               fused: bool = False, outputs_from: int = 0) -> tuple[tf.Tensor, State]:
        return self.encoder(history, state, step_mask, fused=fused, outputs_from=outputs_from)

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
               fused: bool = False, outputs_from: int = 0) -> tuple[tf.Tensor, State]:
        return self.encoder(history, state, step_mask, fused=fused, outputs_from=outputs_from)

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
