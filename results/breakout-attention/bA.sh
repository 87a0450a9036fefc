#!/bin/bash
# Breakout, attention agent: the Pong pE recipe (LSTM input norm, entropy 0.002) (session 2026-12-01)
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Breakout-v5 --preset atari-cpu --agent attention --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --root-dir runs/bA \
  --set train.batch_size=8 --set train.queue_size=16 --set train.entropy_cost=0.002 \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true --set model.lstm_input_norm=true
