"""Where the N queries come from (SPEC §1 and the Section 4.4 ablations).

``QueryNetwork``: top-down queries from the policy LSTM's previous hidden state
``h(t-1) [B, 256]`` → MLP 256 (ReLU) → 128 (ReLU) → N·(c_K + c_S) (linear) →
``[B, N, c_K + c_S]``. The last layer's bias starts from N(0, σ²), σ = ``initial_query_scale``
(AgentConfig), so that from a zero LSTM state (every episode start) each head already asks
its own question: with zero queries the attention is uniform and the answers are spatial means
that average away where things are — the agent then learns nothing that depends on position.
With ``basis_gain`` g ≠ 1 the last c_S entries of each query (those that meet the spatial
basis) are multiplied by g: the "where" logits start g times smaller and, under Adam, move g
times more slowly than the content ("what") part (``key_channels`` = c_K says where to split).
``FixedQueries``: the "fixed-query" ablation, a learnable ``[N, c_K + c_S]`` bias
broadcast over the batch and independent of any state.
"""
from __future__ import annotations

import tensorflow as tf

from s3ta_tf.layers.mlp import MLP


class QueryNetwork(tf.keras.layers.Layer):

    def __init__(self, hidden, num_heads: int, query_size: int, initial_scale: float = 0.0,
                 relu_initializer: str = "glorot_uniform", key_channels: int = 0, basis_gain: float = 1.0,
                 **kw):
        super().__init__(**kw)
        self.hidden, self.num_heads, self.query_size = tuple(hidden), int(num_heads), int(query_size)
        self.key_channels, self.basis_gain = int(key_channels), float(basis_gain)
        if self.basis_gain != 1.0 and not 0 < self.key_channels < self.query_size:
            raise ValueError(f"basis_gain {self.basis_gain} needs key_channels in (0, {self.query_size}), "
                             f"got {self.key_channels}")
        self.initial_scale, self.relu_initializer = float(initial_scale), str(relu_initializer)
        self.mlp = MLP(self.hidden + (self.num_heads * self.query_size,), activate_final=False,
                       final_bias_stddev=self.initial_scale, relu_initializer=self.relu_initializer,
                       dtype=self.dtype_policy, name="mlp")

    def call(self, lstm_hidden):
        q = tf.reshape(tf.cast(self.mlp(lstm_hidden), tf.float32), [-1, self.num_heads, self.query_size])
        if self.basis_gain == 1.0:
            return q
        keys, space = tf.split(q, [self.key_channels, self.query_size - self.key_channels], axis=-1)
        return tf.concat([keys, self.basis_gain * space], axis=-1)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "num_heads": self.num_heads,
                "query_size": self.query_size, "initial_scale": self.initial_scale,
                "relu_initializer": self.relu_initializer, "key_channels": self.key_channels,
                "basis_gain": self.basis_gain}


class FixedQueries(tf.keras.layers.Layer):

    def __init__(self, num_heads: int, query_size: int, initial_scale: float = 0.1, **kw):
        super().__init__(**kw)
        self.num_heads, self.query_size = int(num_heads), int(query_size)
        self.initial_scale = float(initial_scale) or 0.1

    def build(self, input_shape=None):
        self.queries = self.add_weight(name="queries", shape=(self.num_heads, self.query_size),
                                       dtype=tf.float32,
                                       initializer=tf.keras.initializers.RandomNormal(stddev=self.initial_scale))
        super().build(input_shape)

    def call(self, lstm_hidden):
        """Ignores the LSTM state except for its batch size."""
        batch = tf.shape(lstm_hidden)[0]
        return tf.broadcast_to(self.queries[None], [batch, self.num_heads, self.query_size])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "query_size": self.query_size,
                "initial_scale": self.initial_scale}
