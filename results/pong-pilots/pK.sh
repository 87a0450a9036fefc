#!/bin/bash
# Pong, attention agent: pI (query scale 3.0, replay_reuse 3) with the queries' spatial part scaled by 0.25 (model.query_basis_gain): content ahead of position (LEARNING §11) (session 2026-12-02)
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent attention --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --root-dir runs/pK \
  --set train.batch_size=8 --set train.queue_size=32 --set train.entropy_cost=0.002 \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true \
  --set model.lstm_input_norm=true --set model.convlstm_layer_norm=true --set model.initial_query_scale=3.0 --set train.replay_reuse=3 --set model.query_basis_gain=0.25

