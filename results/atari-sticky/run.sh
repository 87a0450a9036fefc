#!/bin/bash
# Issue 24: Atari games trained and evaluated under sticky actions (p = 0.25, Machado et al. 2018),
# 10M emulator frames, the atari-cpu preset (the 16x16 preset is not settled: results/pong-fine/).
# Usage: run.sh GAME VARIANT SEED   e.g. run.sh Pong attention 0, run.sh Breakout fixed-query 0
# Resumes from runs/sticky/NAME when it holds checkpoints; results/atari-sticky/NAME-checkpoint/
# (committed at the end of a session) is copied back there first when runs/sticky/NAME is missing.
set -e
cd "$(dirname "$0")/../.."
game=${1:?game}; variant=${2:?variant}; seed=${3:?seed}
name="$game-$variant-s$seed"
if [ ! -d "runs/sticky/$name/checkpoints" ] && [ -d "results/atari-sticky/$name-checkpoint" ]; then
  mkdir -p "runs/sticky/$name" && cp -r "results/atari-sticky/$name-checkpoint/." "runs/sticky/$name/"
fi
exec "${S3TA:-.venv/bin/s3ta}" train --env "ALE/$game-v5" --preset atari-cpu --agent "$variant" --max-frames 10000000 \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir "runs/sticky/$name" \
  --set train.seed="$seed" --set train.sticky_actions=true
