#!/bin/bash
# Pong, feed-forward baseline on the atari-cpu presets as of 2026-12-02 (pQ's recipe; the model
# options of the preset only concern the attention agent): the overlay for pQ. Resumes with the same command.
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent feedforward --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir runs/pR
