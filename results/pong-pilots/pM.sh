#!/bin/bash
# Pong, feed-forward baseline on pL's recipe (control for pL; the model options only affect the attention agent and are kept so the two commands differ in --agent only).
# standardised advantages, entropy 0.01, batch 16 x 20, no reuse (eighth session, 2026-12-02). Resumes with the same command.
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent feedforward --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir runs/pM \
  --set train.batch_size=16 --set train.queue_size=32 --set train.entropy_cost=0.01 \
  --set train.normalize_advantages=true \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true \
  --set model.lstm_input_norm=true --set model.convlstm_layer_norm=true --set model.initial_query_scale=3.0
