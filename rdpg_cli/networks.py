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
    """The recurrent layer that turns the history into a summary ``h_t``; absent for feed-forward nets."""

    def __init__(self, kind: str, units: int, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.units = units
        if kind == "lstm":
            self.rnn = keras.layers.LSTM(units, return_sequences=True, return_state=True)
        elif kind == "gru":
            self.rnn = keras.layers.GRU(units, return_sequences=True, return_state=True)
        else:
            self.rnn = None

    @property
    def state_size(self) -> int:
        return {"lstm": 2, "gru": 1}.get(self.kind, 0)

    def initial_state(self, batch_size: int) -> State:
        return tuple(tf.zeros([batch_size, self.units]) for _ in range(self.state_size))

    def call(self, history: tf.Tensor, state: State, step_mask: tf.Tensor | None = None
             ) -> tuple[tf.Tensor, State]:
        """``step_mask`` [batch, time] (bool): masked steps leave the state unchanged, so steps of another
        episode at the front of a window do not disturb the zero state the episode starts from."""
        if self.rnn is None:
            return history, ()
        outputs = self.rnn(history, initial_state=list(state), mask=step_mask)
        return outputs[0], tuple(outputs[1:])


def _dense_stack(sizes: list[int], prefix: str) -> list[keras.layers.Layer]:
    return [keras.layers.Dense(n, activation="relu", name=f"{prefix}_{i}") for i, n in enumerate(sizes)]


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

    def encode(self, history: tf.Tensor, state: State = (), step_mask: tf.Tensor | None = None
               ) -> tuple[tf.Tensor, State]:
        return self.encoder(history, state, step_mask)

    def head(self, features: tf.Tensor) -> tf.Tensor:
        x = features
        for layer in self.hidden:
            x = layer(x)
        x = self.out(x)
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

    def encode(self, history: tf.Tensor, state: State = (), step_mask: tf.Tensor | None = None
               ) -> tuple[tf.Tensor, State]:
        return self.encoder(history, state, step_mask)

    def head(self, features: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
        x = tf.concat([features, action], axis=-1)
        for layer in self.hidden:
            x = layer(x)
        return tf.squeeze(self.out(x), axis=-1)

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


def build(model: keras.Model, *inputs: tf.Tensor) -> None:
    """Create a model's variables by calling it once on zeros."""
    model(*inputs)
