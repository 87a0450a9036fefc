#!/bin/bash
# Pong, LSTM baseline (the feed-forward baseline's ResNet torso + the attention agent's policy LSTM
# with its input layer-normalised) on pB's recipe: does the recurrent core learn where the
# feed-forward baseline does? (eighth session, 2026-12-02). Resumes with the same command.
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent lstm --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir runs/pN \
  --set train.batch_size=8 --set train.queue_size=16 --set train.entropy_cost=0.01 \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true \
  --set model.lstm_input_norm=true
