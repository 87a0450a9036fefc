#!/bin/bash
# Pong, attention agent: pH (LN ConvLSTM, LSTM input norm, entropy 0.002, initial query scale 3.0)
# with 4x the batch (32 x 20 = 640 transitions per update) and each trajectory sampled twice:
# the attention agent's vision gradient is ~200x the LSTM baseline's torso gradient smaller and
# noise-dominated at batch 8 (eighth session, 2026-12-02). Resumes with the same command.
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent attention --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir runs/pP \
  --set train.batch_size=32 --set train.queue_size=64 --set train.replay_reuse=2 --set train.entropy_cost=0.002 \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true \
  --set model.lstm_input_norm=true --set model.convlstm_layer_norm=true --set model.initial_query_scale=3.0
