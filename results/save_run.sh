#!/bin/bash
# Saves what resumes a run into the repository at the end of a session (a session ends every
# process; runs/ is not committed): the newest checkpoint (the `checkpoint` index rewritten to
# name only it), run.json, the TensorBoard summaries and the actors' episode logs, then the curve.
# Stop the run first (Ctrl-C / SIGINT to `s3ta train`: the learner checkpoints before it exits).
# Usage: results/save_run.sh RUN_DIR DEST_DIR CURVE_PREFIX
#   e.g. results/save_run.sh runs/sticky/Pong-attention-s0 results/atari-sticky/Pong-attention-s0-checkpoint \
#        results/atari-sticky/curve-Pong-attention-s0
# The run's own run.sh copies DEST_DIR back to RUN_DIR when RUN_DIR is missing.
set -e
run=${1:?run dir}; dest=${2:?destination}; curve=${3:?curve prefix}
ck=$(sed -n 's/^model_checkpoint_path: "\(.*\)"/\1/p' "$run/checkpoints/checkpoint")
rm -rf "$dest" && mkdir -p "$dest/checkpoints" "$dest/actors"
cp "$run/checkpoints/$ck".* "$dest/checkpoints/"
printf 'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' "$ck" "$ck" > "$dest/checkpoints/checkpoint"
cp "$run/run.json" "$dest/"
cp -r "$run/summaries" "$dest/"
cp "$run"/actors/episodes-*.jsonl "$dest/actors/"
"${S3TA:-.venv/bin/s3ta}" plot "$run" --out "$curve" --csv
