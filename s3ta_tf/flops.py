"""Analytic FLOP count of one agent step (multiply-adds count 2), from the config alone.

Used by the benchmarks to turn steps/s into GFLOP/s. The learner's forward+backward is
counted as 3× the forward (the usual 1 forward + 2 backward estimate).
"""
from __future__ import annotations

from s3ta_tf.config import AgentConfig


def _conv(h, w, k, cin, cout):
    return 2 * h * w * k * k * cin * cout


def _dense(*sizes):
    return sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _resnet_trunk(cfg, h, w, c_prev):
    """FLOPs of the IMPALA ResNet's convolutions and the (h, w, channels) they leave."""
    torso = 0
    for c in cfg.resnet_channels:
        torso += _conv(h, w, 3, c_prev, c)
        h, w = -(-h // 2), -(-w // 2)
        torso += 2 * cfg.resnet_blocks * _conv(h, w, 3, c, c)
        c_prev = c
    return torso, h, w, c_prev


def agent_step_flops(cfg: AgentConfig, variant: str = "attention", num_actions: int = 18) -> dict:
    """FLOPs per step by part: ``{"vision_core": ..., ..., "total": ...}``."""
    parts = {}
    h, w, cin = cfg.observation_shape
    if variant in ("attention", "fixed-query", "l2-keys"):
        if cfg.vision_torso == "resnet":
            torso, h, w, cin = _resnet_trunk(cfg, h, w, cin)
        else:
            torso = 0
            for c, k, s in zip(cfg.conv_channels, cfg.conv_kernels, cfg.conv_strides):
                h, w = -(-h // s), -(-w // s)
                torso += _conv(h, w, k, cin, c)
                cin = c
        f, kk = cfg.convlstm_channels, cfg.convlstm_kernel
        parts["conv_torso"] = torso
        parts["convlstm"] = _conv(h, w, kk, cin, 4 * f) + _conv(h, w, kk, f, 4 * f)
        heads = 1 if variant == "l2-keys" else cfg.num_heads
        qs = 0 if variant == "l2-keys" else cfg.query_size
        parts["query_network"] = _dense(cfg.lstm_units, *cfg.query_hidden, heads * qs) if variant == "attention" else 0
        parts["attention"] = 2 * heads * h * w * (cfg.query_size + cfg.answer_size)
        parts["answer_processor"] = _dense(heads * (cfg.answer_size + qs) + num_actions + 1, *cfg.answer_hidden)
        core_in = cfg.answer_hidden[-1]
    else:
        torso, h, w, c_prev = _resnet_trunk(cfg, h, w, cin)
        parts["impala_resnet"] = torso + _dense(h * w * c_prev, cfg.resnet_dense)
        core_in = cfg.resnet_dense + (num_actions + 1 if variant == "lstm" else 0)
    if variant != "feedforward":
        parts["policy_core"] = _dense(core_in + cfg.lstm_units, 4 * cfg.lstm_units)
        core_in = cfg.lstm_units
    parts["heads"] = _dense(core_in, cfg.head_hidden) + 2 * cfg.head_hidden * (num_actions + 1)
    parts["total"] = sum(parts.values())
    return parts


def step_memory_bytes(cfg: AgentConfig, variant: str = "attention", num_actions: int = 18) -> int:
    """A lower bound of the memory one step at batch 1 needs, from the config alone: the
    observation (uint8, then as compute floats), the torso's largest activation (held beside
    it) and the baselines' dense layer, whose weights grow with the observation. Enough to
    refuse a shape that cannot fit before TensorFlow tries (``s3ta describe``/``export``)."""
    item = 2 if cfg.precision == "bfloat16" else 4
    h, w, c = cfg.observation_shape
    observation = h * w * c * (1 + item)
    if variant in ("attention", "fixed-query", "l2-keys") and cfg.vision_torso == "conv":
        s = cfg.conv_strides[0]
        largest = -(-h // s) * -(-w // s) * cfg.conv_channels[0]
        return observation + largest * item
    largest = h * w * cfg.resnet_channels[0]     # the first 3x3 convolution, before its pooling
    _, h, w, channels = _resnet_trunk(cfg, h, w, c)
    dense = h * w * channels * cfg.resnet_dense * 4 if variant in ("feedforward", "lstm") else 0
    return observation + largest * item + dense
