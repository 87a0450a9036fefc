#!/usr/bin/env bash
# Smoke test of the docker compose stack on a small MiniGrid run, as a new user would run it:
#   1. build the image (once, by the replay service)      [--no-build skips it]
#   2. up: replay, learner, 2 actors, TensorBoard
#   3. the learner's train step advances
#   4. TensorBoard answers over HTTP
#   5. an actor whose process crashes is restarted, and training goes on
#   6. down, then up again: the learner resumes from its checkpoint
# Exits 0, or non-zero with the failing step named. Needs a Docker engine with Compose v2.
# Without Docker Hub, build on a local base image: S3TA_BASE_IMAGE=local/python:3.11-slim-bookworm
# (../shared/tools/docker-engine.sh sets up such an engine and tags python:3.11-slim).
#   bash docker/smoke-test.sh [--no-build]
set -uo pipefail
cd "$(dirname "$0")/.."
PROJECT=${SMOKE_PROJECT:-s3ta-smoke}
RUN=smoke
TB_PORT=${SMOKE_TENSORBOARD_PORT:-$(python3 -c "import socket; s=socket.socket(); s.bind(('',0)); print(s.getsockname()[1])")}
export S3TA_ENV=MiniGrid-Empty-5x5-v0 S3TA_PRESET=small S3TA_RUN=$RUN TENSORBOARD_PORT=$TB_PORT
export S3TA_SET="model.observation_shape=24,24,3 model.convlstm_channels=16 model.lstm_units=16 \
train.unroll_length=5 train.batch_size=4 train.queue_size=16 train.envs_per_actor=2 \
train.checkpoint_interval_secs=5 train.summary_interval=5 train.export_interval_steps=0"
DC=(docker compose --progress quiet -p "$PROJECT" -f docker/compose.yaml)
STEP="start"

fail() { echo "smoke test FAILED at step '$STEP': $*" >&2; "${DC[@]}" logs --tail 30 >&2 2>/dev/null; "${DC[@]}" down -v >/dev/null 2>&1; exit 1; }
step() { STEP="$1"; echo "[$(date +%H:%M:%S)] $1"; }
learner_json() {   # the learner's progress file, from inside the runs volume
    "${DC[@]}" exec -T learner python -c "import json,sys; d=json.load(open('/runs/$RUN/learner.json')); print(d['$1'])" 2>/dev/null
}
wait_for() {       # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
    local seconds=$1 what=$2; shift 2
    for _ in $(seq "$seconds"); do "$@" && return 0; sleep 1; done
    fail "timed out after ${seconds}s waiting for $what"
}
step_above() { local s; s=$(learner_json train_step) && [ -n "$s" ] && [ "$s" -gt "$1" ]; }
actor_pids() { "${DC[@]}" ps -q actor; }
tensorboard_up() { python3 -c "import urllib.request; urllib.request.urlopen('http://localhost:$TB_PORT/', timeout=3)" 2>/dev/null; }

docker info >/dev/null 2>&1 || { echo "smoke test FAILED at step 'docker': no Docker engine answers" >&2; exit 2; }
"${DC[@]}" down -v >/dev/null 2>&1

if [ "${1:-}" != "--no-build" ]; then
    step "build the image"
    "${DC[@]}" build >/dev/null || fail "docker compose build failed"
fi

step "up: replay, learner, 2 actors, tensorboard"
"${DC[@]}" up -d --scale actor=2 >/dev/null || fail "docker compose up failed"

step "the learner's train step advances"
wait_for 300 "a first update" step_above 0
first=$(learner_json train_step)
wait_for 120 "updates after step $first" step_above "$first"
echo "  train step $first -> $(learner_json train_step)"

step "TensorBoard answers on port $TB_PORT"
wait_for 120 "TensorBoard" tensorboard_up

step "a crashed actor is restarted and training goes on"
victim=$(actor_pids | head -1)
[ -n "$victim" ] || fail "no actor container"
restarts=$(docker inspect -f '{{.RestartCount}}' "$victim") || fail "cannot inspect actor container $victim"
# SIGKILL the actor's Python process inside that same container (init: true makes tini PID 1, so
# the actor is its child and the kill is not ignored); the container then exits 137 and its
# restart policy brings it back. The exec prints the PIDs it kills and exits 3 if it finds none;
# it may itself be torn down with the container (137) once the kill has landed.
kill_out=$(docker exec "$victim" python -c "
import os, signal, sys
me = os.getpid()
pids = []
for p in os.listdir('/proc'):
    if not p.isdigit() or int(p) == me:
        continue
    try:
        argv = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\0')
    except OSError:
        continue
    if b'python' in argv[0] and b'actor' in argv[1:]:
        pids.append(int(p))
if not pids:
    print('no actor process found', flush=True)
    sys.exit(3)
print('killing', *pids, flush=True)
for p in pids:
    os.kill(p, signal.SIGKILL)
" 2>&1)
kill_rc=$?
case "$kill_rc" in
    0|137) [[ "$kill_out" == killing* ]] || fail "kill in actor container $victim did not run: $kill_out (exit $kill_rc)";;
    *) fail "kill in actor container $victim failed with exit $kill_rc: $kill_out";;
esac
echo "  container ${victim:0:12}: $kill_out"
restarted() { [ "$(docker inspect -f '{{.RestartCount}}' "$victim")" -gt "$restarts" ] && [ "$(docker inspect -f '{{.State.Running}}' "$victim")" = true ]; }
wait_for 120 "the crashed actor to be restarted" restarted
before=$(learner_json train_step)
wait_for 180 "training to go on after the crash (step $before)" step_above "$before"
echo "  actor restarted $(docker inspect -f '{{.RestartCount}}' "$victim") time(s); train step $before -> $(learner_json train_step)"

step "down, then up: the learner resumes from its checkpoint"
sleep 6   # past one checkpoint interval
"${DC[@]}" down >/dev/null || fail "docker compose down failed"
"${DC[@]}" up -d --scale actor=2 >/dev/null || fail "docker compose up (second) failed"
resumed() { "${DC[@]}" logs learner 2>/dev/null | grep -q "learner: resumed from"; }
wait_for 300 "the learner to resume from a checkpoint" resumed
"${DC[@]}" logs learner 2>/dev/null | grep "learner: resumed from" | tail -1 | sed 's/^/  /'
after=$(learner_json train_step)
wait_for 180 "updates after resuming (step $after)" step_above "$after"

step "clean up"
"${DC[@]}" down -v >/dev/null
echo "smoke test passed"
