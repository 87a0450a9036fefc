#!/bin/bash
# Breakout, attention agent, the atari-cpu presets as of 2026-12-02 (the recipe that trained Pong
# in run pQ: ResNet vision torso, both layer norms, query scale 3.0, Adam 5e-4 annealed,
# entropy 0.002, batch 8 x 20). Resumes with the same command.
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Breakout-v5 --preset atari-cpu --agent attention --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir runs/bB
