"""Benchmark of the analyses (``s3ta bench analysis``): seconds per analysed frame.

* overlays: building the per-head overlay panels and encoding MP4 + GIF, per frame;
* saliency: one 210×160 frame perturbed on the stride-5 grid (42×32 = 1344 perturbations),
  pushed through the model in batches from one recurrent state, for the attention agent
  and the feed-forward baseline.

Frames are real ALE frames (MsPacman) recorded by the agent itself.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time

import numpy as np


def _model(preset: str, variant: str, num_actions: int):
    from s3ta_tf import agent_config, build_agent_net
    from pipelines.analysis.stepper import ModelStepper
    cfg = agent_config(preset, {"observation_shape": (210, 160, 3)})
    return ModelStepper(build_agent_net(cfg, variant, num_actions))


def run_analysis_benchmark(out_path: str = None, args=None) -> dict:
    """Runs the benchmark; returns the result dict (``s3ta bench`` writes it to ``out_path``)."""
    from pipelines.analysis.config import analysis_config
    from pipelines.analysis.overlay import overlay_panels
    from pipelines.analysis.rollout import make_analysis_environment, run_agent
    from pipelines.analysis.saliency import recurrent_evaluator, saliency_maps
    from pipelines.analysis.video import write_gif, write_mp4

    preset = getattr(args, "preset", "paper") or "paper"
    quick = bool(getattr(args, "quick", False))
    env_id = "ALE/MsPacman-v5"
    cfg = analysis_config("paper")
    agent = _model(preset, "attention", 9)
    steps = 12 if quick else 40
    sal_t = steps - 1
    env = make_analysis_environment(env_id, agent, seed=0)
    rollout = run_agent(agent, env, steps, "sample", 0, keep_contexts=[sal_t], progress=False)
    env.close()

    result = {"benchmark": "analysis", "env": env_id, "model_preset": preset, "frame_shape": [210, 160, 3],
              "num_heads": agent.num_heads, "feature_shape": list(agent.feature_shape),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "quick": quick}

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        panels = overlay_panels(rollout, cfg.overlay_alpha, 1)
        t_panels = time.perf_counter() - t
        write_mp4(os.path.join(tmp, "o.mp4"), panels, cfg.video_fps)
        t_mp4 = time.perf_counter() - t - t_panels
        write_gif(os.path.join(tmp, "o.gif"), panels, cfg.video_fps)
        t_all = time.perf_counter() - t
    result["overlay"] = {"frames": steps, "s_per_frame": t_all / steps, "panels_s_per_frame": t_panels / steps,
                         "mp4_s_per_frame": t_mp4 / steps, "gif_s_per_frame": (t_all - t_panels - t_mp4) / steps}

    frame = rollout.frames[sal_t]
    reps = 1 if quick else 2
    result["saliency"] = {"stride": 5, "perturbations": 42 * 32, "batch": cfg.saliency_batch}
    baseline = _model(preset, "feedforward", 9)
    base_ctx = type(rollout.contexts[sal_t])(baseline.initial_state(1), 0, 0.0, False)
    for name, stepper, ctx in (("attention", agent, rollout.contexts[sal_t]), ("feedforward", baseline, base_ctx)):
        evaluate = recurrent_evaluator(stepper, ctx)
        saliency_maps(evaluate, frame, 5, batch_size=cfg.saliency_batch)       # trace + warm caches
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            sal = saliency_maps(evaluate, frame, 5, batch_size=cfg.saliency_batch)
            times.append(time.perf_counter() - t)
        assert sal.policy.shape == (42, 32)
        result["saliency"][name] = {"s_per_frame": float(np.min(times)),
                                    "perturbed_frames_per_s": 42 * 32 / float(np.min(times))}
    return result
