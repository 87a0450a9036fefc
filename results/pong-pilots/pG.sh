#!/bin/bash
# Pong, attention agent: pF (LN ConvLSTM + LSTM input norm) with entropy cost 0.002 as in pE (session 2026-12-01b)
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent attention --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --root-dir runs/pG \
  --set train.batch_size=8 --set train.queue_size=16 --set train.entropy_cost=0.002 \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true \
  --set model.lstm_input_norm=true --set model.convlstm_layer_norm=true
