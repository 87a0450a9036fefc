#!/bin/bash
# Pong, attention agent: pH (LN ConvLSTM, LSTM input norm, entropy 0.002, initial query scale 3.0)
# with the IMPALA ResNet trunk as the vision core's torso (model.vision_torso=resnet: 3x3 convs and
# max-pools, the LSTM baseline's, before the ConvLSTM) instead of the strided 8x8/4 and 4x4/2
# convolutions (eighth session, 2026-12-02). Resumes with the same command.
cd "$(dirname "$0")/../.."
exec .venv/bin/s3ta train --env ALE/Pong-v5 --preset atari-cpu --agent attention --max-frames 20000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir runs/pQ \
  --set train.batch_size=8 --set train.queue_size=16 --set train.entropy_cost=0.002 \
  --set train.learning_rate=5e-4 --set train.anneal_learning_rate=true \
  --set model.lstm_input_norm=true --set model.convlstm_layer_norm=true --set model.initial_query_scale=3.0 \
  --set model.vision_torso=resnet
