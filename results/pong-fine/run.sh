#!/bin/bash
# Pong, attention agent with the 16x16-map CPU preset (atari-cpu-fine: atari-cpu's recipe, the
# ResNet trunk cut to two sections). Issue 20. Usage: run.sh NAME SEED [MAX_FRAMES [--set K=V ...]]  (e.g. fA 0).
# Arguments after MAX_FRAMES go to s3ta train as they are (item 4's design tries, e.g.
# run.sh h8 0 12000000 --set model.num_heads=8); give them again when the run resumes.
# MAX_FRAMES (default 20,000,000) is where the run stops and where Adam's learning rate, annealed
# linearly, reaches 0: fA ran with 20M; the g runs anneal over the issue's budget of 12M.
# Resumes from runs/NAME when it holds checkpoints; results/pong-fine/NAME-checkpoint/ (committed at the end of a
# session) is copied back there first when runs/NAME is missing.
set -e
cd "$(dirname "$0")/../.."
name=${1:?name}; seed=${2:?seed}; max_frames=${3:-20000000}; shift $(( $# < 3 ? $# : 3 ))
if [ ! -d "runs/$name/checkpoints" ] && [ -d "results/pong-fine/$name-checkpoint" ]; then
  mkdir -p "runs/$name" && cp -r "results/pong-fine/$name-checkpoint/." "runs/$name/"
fi
exec "${S3TA:-.venv/bin/s3ta}" train --env ALE/Pong-v5 --preset atari-cpu-fine --agent attention --max-frames "$max_frames" \
  --actors 1 --envs-per-actor 16 --learner-threads 1 --precision float32 --root-dir "runs/$name" \
  --set train.seed="$seed" "$@"
