#!/bin/bash
# Issue 24: works through the issue's runs in order, one at a time, across sessions.
# Usage: queue.sh STOP_AT [OUT]
#   STOP_AT  the time (date -d syntax, e.g. 15:25) at which the running run is stopped (SIGINT:
#            the learner checkpoints) and saved; leave the finishing minutes of the session after it
#   OUT      where results go (default: results/atari-sticky of this tree; from a worktree pass the
#            main checkout's, e.g. /work/main/results/atari-sticky, so that they can be committed there)
# A run is done when OUT/eval-NAME-sticky/evaluation.json exists. For the next run not done it calls
# run.sh (which resumes from runs/sticky/NAME, or from NAME-checkpoint/ of this tree); when the run
# reaches 10M frames it is evaluated over 10 episodes with sticky actions and with the no-op protocol,
# its export is copied to OUT/NAME-final/model, its checkpoint and curve are saved, and the next run
# starts. At STOP_AT the running run is stopped and saved (OUT/NAME-checkpoint/, OUT/curve-NAME.*).
# Nothing is committed: commit OUT by hand (`git add results/atari-sticky && git commit`), and create the
# worktree of the next session from that commit, so that run.sh finds the saved checkpoint.
set -u
cd "$(dirname "$0")/../.."
stop_at=$(date -d "${1:?STOP_AT, e.g. 15:25}" +%s) || exit 2
out=${2:-results/atari-sticky}
S=${S3TA:-.venv/bin/s3ta}
# The issue's order: the five games with the attention agent, then the ablation on Pong and Breakout.
# QUEUE_RUNS="Breakout:attention Pong:attention" (GAME:VARIANT, space-separated) runs those instead, in that order.
RUNS="${QUEUE_RUNS:-Pong:attention Breakout:attention Boxing:attention Freeway:attention Seaquest:attention
      Pong:fixed-query Breakout:fixed-query Pong:l2-keys Breakout:l2-keys
      Pong:feedforward Breakout:feedforward Pong:lstm Breakout:lstm}"
SEED=${SEED:-0}

save() {  # NAME: checkpoint, summaries, episodes and curve into OUT
  S3TA=$S bash results/save_run.sh "runs/sticky/$1" "$out/$1-checkpoint" "$out/curve-$1"
}

for item in $RUNS; do
  game=${item%%:*}; variant=${item#*:}; name="$game-$variant-s$SEED"
  [ -f "$out/eval-$name-sticky/evaluation.json" ] && continue
  echo "queue: $name ($(date -u +%H:%M))"
  bash results/atari-sticky/run.sh "$game" "$variant" "$SEED" &
  pid=$!
  while kill -0 $pid 2>/dev/null; do
    if [ "$(date +%s)" -ge "$stop_at" ]; then
      echo "queue: $(date -u +%H:%M), stopping $name at the session's limit"
      kill -INT $pid; wait $pid; save "$name"
      echo "queue: saved $name; commit $out"; exit 0
    fi
    sleep 15
  done
  wait $pid || { echo "queue: $name exited with an error; see runs/sticky/$name/logs"; save "$name"; exit 1; }
  model="runs/sticky/$name/export/latest"
  $S evaluate --model "$model" --env "ALE/$game-v5" --episodes 10 --sticky-actions --out "$out/eval-$name-sticky"
  $S evaluate --model "$model" --env "ALE/$game-v5" --episodes 10 --out "$out/eval-$name-noop"
  rm -rf "$out/$name-final" && mkdir -p "$out/$name-final" && cp -r "$model" "$out/$name-final/model"
  save "$name"
  echo "queue: $name done ($(date -u +%H:%M)); commit $out"
done
echo "queue: every run is done"
