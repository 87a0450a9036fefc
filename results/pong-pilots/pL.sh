#!/bin/bash
# Pong, attention agent: pH's model (LN ConvLSTM, LSTM input norm, initial query scale 3.0) with
# PPO-style standardised advantages (train.normalize_advantages=true) and PPO's entropy cost 0.01,
# batch 16 x 20, no trajectory reuse (eighth session, 2026-12-02). Resumes with the same command.
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent attention --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir runs/pL \
  --set train.batch_size=16 --set train.queue_size=32 --set train.entropy_cost=0.01 \
  --set train.normalize_advantages=true \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true \
  --set model.lstm_input_norm=true --set model.convlstm_layer_norm=true --set model.initial_query_scale=3.0
