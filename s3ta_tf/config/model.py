"""Configuration of the attention agent and its baselines (SPEC §1).

``paper`` holds the SPEC numbers exactly (210×160×3 input, 27×20×128 ConvLSTM output,
4 heads, 8 key channels, 64 basis channels, queries of 72 and answers of 184).
``small`` is a cheap configuration for tests and quick runs (64×64 input, a narrow
ConvLSTM) — same code, different numbers.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from s3ta_tf.config.overrides import check_ranges, from_preset
from s3ta_tf.precision import PRECISIONS

AGENT_VARIANTS = ("attention", "fixed-query", "l2-keys", "feedforward", "lstm")
VISION_TORSOS = ("conv", "resnet")   # AgentConfig.vision_torso


def check_precision(precision: str) -> None:
    """ValueError unless ``precision`` is one a model config may hold."""
    if precision not in PRECISIONS:
        raise ValueError(f"model.precision must be one of {PRECISIONS}, got {precision!r}")


class AttentionSizes:
    """The derived attention sizes of a config with ``key_channels`` and ``basis_frequencies``
    (the agent's and the classifier's)."""

    @property
    def basis_channels(self) -> int:
        return (2 * self.basis_frequencies) ** 2

    @property
    def query_size(self) -> int:
        return self.key_channels + self.basis_channels


@dataclasses.dataclass(frozen=True)
class AgentConfig(AttentionSizes):
    # Observation: uint8 frames, scaled to [0, 1] inside the model.
    observation_shape: Tuple[int, ...] = (210, 160, 3)
    # Vision core: conv 8x8/4 (32) -> conv 4x4/2 (64) -> ConvLSTM 3x3 (128), SAME padding.
    conv_channels: Tuple[int, ...] = (32, 64)
    conv_kernels: Tuple[int, ...] = (8, 4)
    conv_strides: Tuple[int, ...] = (4, 2)
    convlstm_channels: int = 128
    convlstm_kernel: int = 3
    # The vision core's torso: "conv" (the paper's two strided convolutions above) or "resnet"
    # (not in the paper: the IMPALA ResNet trunk of `resnet_channels` / `resnet_blocks` without
    # its dense layer, 3x3 convolutions and three 3x3/2 max-pools, so the map is H/8 x W/8;
    # docs/LEARNING.md §12).
    vision_torso: str = "conv"
    # Feed the torso the frame and its difference from the previous frame (6 channels: x_t and
    # x_t - x_{t-1}, zero at an episode's first step; not in the paper). A constant background
    # then gives the same features at every step while anything that moves (Pong's ball) is
    # marked from the first update, so its keys differ from the background's (docs/LEARNING.md
    # §12). The previous frame is carried in the state as "prev_frame". Both agents and baselines.
    frame_difference: bool = False
    # Layer-normalise the ConvLSTM's gate terms and cell state (not in the paper; see
    # s3ta_tf/layers/convlstm.py and docs/LEARNING.md §9).
    convlstm_layer_norm: bool = False
    # Attention: keys are the first `key_channels` ConvLSTM channels, values the rest.
    key_channels: int = 8
    num_heads: int = 4
    # Spatial basis: `basis_frequencies` cosines and as many sines per axis -> (2F)^2 channels.
    basis_frequencies: int = 4
    learnable_basis: bool = False
    # Query network on the policy LSTM's previous hidden state (last layer is N*(c_K+c_S)).
    query_hidden: Tuple[int, ...] = (256, 128)
    # Standard deviation of the queries' initial bias (the query network's last layer; the
    # fixed-query ablation's queries): non-zero so that attention is not uniform at the start.
    initial_query_scale: float = 1.0
    # Gain on each query's spatial-basis part (the "where" logits): 1.0 is the paper's plain
    # dot product; below 1 the content ("what") part starts ahead and the position part moves
    # more slowly under Adam (docs/LEARNING.md §11: at 1.0 "where" outweighs "what" 3-4x at
    # initialisation and the Pong heads never followed the ball).
    query_basis_gain: float = 1.0
    # Answer processor MLP, policy LSTM, heads.
    answer_hidden: Tuple[int, ...] = (512, 256)
    lstm_units: int = 256
    # Layer-normalise the policy LSTM's input (not in the paper; see s3ta_tf/layers/lstm.py).
    lstm_input_norm: bool = False
    head_hidden: int = 128
    reward_clip: float = 1.0
    # IMPALA deep ResNet baselines: sections of (conv3x3, maxpool 3x3/2, 2 residual blocks).
    resnet_channels: Tuple[int, ...] = (16, 32, 32)
    resnet_blocks: int = 2
    resnet_dense: int = 256
    # Numerics: "float32" or "bfloat16" (mixed precision: bf16 compute, f32 weights/outputs).
    precision: str = "float32"

    def __post_init__(self):
        if (len(self.observation_shape) != 3 or self.observation_shape[-1] != 3
                or min(self.observation_shape) < 1):
            raise ValueError(f"model.observation_shape must be height,width,3 with height and width >= 1, "
                             f"got {','.join(map(str, self.observation_shape))}")
        check_ranges(self, "model",
                     positive=("conv_channels", "conv_kernels", "conv_strides", "convlstm_channels",
                               "convlstm_kernel", "num_heads", "basis_frequencies", "query_hidden",
                               "answer_hidden", "lstm_units", "head_hidden", "resnet_channels",
                               "resnet_blocks", "resnet_dense"),
                     positive_float=("reward_clip", "query_basis_gain"), non_negative_float=("initial_query_scale",),
                     finite=("reward_clip", "query_basis_gain", "initial_query_scale"))
        if not (len(self.conv_channels) == len(self.conv_kernels) == len(self.conv_strides)):
            raise ValueError("model.conv_channels, conv_kernels and conv_strides must have equal lengths")
        if not 0 < self.key_channels < self.convlstm_channels:
            raise ValueError(f"model.key_channels must be in (0, convlstm_channels={self.convlstm_channels}), "
                             f"got {self.key_channels}")
        check_precision(self.precision)
        if self.vision_torso not in VISION_TORSOS:
            raise ValueError(f"model.vision_torso must be one of {VISION_TORSOS}, got {self.vision_torso!r}")

    # Derived sizes (SPEC §1): never stored, always computed (basis_channels and query_size:
    # AttentionSizes).
    @property
    def value_channels(self) -> int:
        return self.convlstm_channels - self.key_channels

    @property
    def answer_size(self) -> int:
        return self.value_channels + self.basis_channels

    @property
    def feature_shape(self) -> Tuple[int, int]:
        """(h, w) of the vision core's output with SAME padding: ceil division per conv."""
        h, w = self.observation_shape[:2]
        strides = self.conv_strides if self.vision_torso == "conv" else (2,) * len(self.resnet_channels)
        for s in strides:
            h, w = -(-h // s), -(-w // s)
        return h, w


AGENT_PRESETS = {
    "paper": AgentConfig(),
    "small": AgentConfig(
        observation_shape=(64, 64, 3),
        conv_channels=(16, 32),
        convlstm_channels=40,
        key_channels=8,
        num_heads=2,
        basis_frequencies=2,
        query_hidden=(64, 64),
        # Smaller random query biases than the paper preset's 1.0: at 1.0 the "where" logits
        # (std 1.4) dominate the "what" logits (0.25) from the first step, and in about half
        # of the demo runs both heads locked onto fixed cells, leaving a frame-independent
        # policy (docs/LEARNING.md §7).
        initial_query_scale=0.3,
        answer_hidden=(128, 64),
        lstm_units=64,
        head_hidden=64,
        resnet_channels=(8, 16, 16),
        resnet_blocks=1,
        resnet_dense=64,
    ),
    # The same S3TA agent sized for training Atari on a few CPU cores (issue "Atari results"):
    # 64x64 RGB input (max-pooled over each action repeat, then resized), the IMPALA ResNet
    # trunk (8, 16, 16; 3x3 convs and max-pools) -> ConvLSTM 3x3 (32) = an 8x8 map; 4 heads
    # with 8 key channels and a 16-channel basis (queries 24, answers 40); LSTM 128. The
    # baselines are narrowed to a matching cost (IMPALA ResNet 16, 32, 32 at 64x64 would cost
    # 3x the attention agent). Not in the paper, each because Pong did not learn without it
    # (docs/LEARNING.md): the ResNet trunk instead of the strided 8x8/4, 4x4/2 convolutions
    # (conv_channels below), which averaged the one-pixel ball away (§12); the policy LSTM's
    # input layer-normalised (§6); the layer-normalised ConvLSTM (§9); query biases of scale
    # 3.0 (§10). With it Pong's training return crossed 0 near 5M frames and reached +19 at 9.8M
    # (docs/RESULTS.md, run pQ).
    "atari-cpu": AgentConfig(
        observation_shape=(64, 64, 3),
        vision_torso="resnet",
        lstm_input_norm=True,
        convlstm_layer_norm=True,
        initial_query_scale=3.0,
        conv_channels=(16, 32),
        convlstm_channels=32,
        key_channels=8,
        num_heads=4,
        basis_frequencies=2,
        query_hidden=(64, 64),
        answer_hidden=(128, 128),
        lstm_units=128,
        head_hidden=64,
        resnet_channels=(8, 16, 16),
        resnet_blocks=1,
        resnet_dense=128,
    ),
}
# `atari-cpu` with a 16x16 attention map (issue 20: its 8x8 cells are 8x8 pixels of the 64x64
# frame, 26x20 of the 210x160 screen, too coarse to see a head follow Pong's ball; the paper's
# 27x20 map has cells of 8x8 screen pixels). The ResNet trunk keeps two of its three
# sections, so the frame is pooled twice (64 -> 32 -> 16) and the ConvLSTM, keys, values and
# attention run on 16x16 cells of 4x4 frame pixels (13x10 screen pixels). Nothing else
# changes; a step costs about twice atari-cpu's FLOPs (`s3ta describe`), most of it the ConvLSTM
# on 4x the cells. The baselines (feedforward, lstm) take the same two-section trunk.
AGENT_PRESETS["atari-cpu-fine"] = dataclasses.replace(AGENT_PRESETS["atari-cpu"], resnet_channels=(8, 16))


def agent_config(preset: str = "paper", overrides=None) -> AgentConfig:
    """The named preset with ``overrides`` (``["field=value", ...]`` or a dict) applied."""
    return from_preset(AGENT_PRESETS, preset, overrides, "preset")
