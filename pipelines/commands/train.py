"""``s3ta train``: replay + learner + actors on localhost (or, with ``--ray``, on a Ray cluster),
with a progress line."""
from __future__ import annotations

import os
import signal
import time

from agents.impala.config import DEMO
from pipelines.commands.flags import (add_fine_tune, add_max_frames, add_root_dir, add_run_args,
                                      refuse_removed_variables, run_spec_from_args)
from pipelines.rl.ray_placement import add_ray_flags, placement_from_args

def register(sub):
    p = sub.add_parser(
        "train", help="train: replay, learner and actors as processes on this machine (or on a Ray cluster)",
        description="Starts 's3ta replay', 's3ta learner' and --actors 's3ta actor' processes on localhost "
                    "and supervises them: a crashed service is restarted (the learner resumes from its "
                    "checkpoint, actors and learner reconnect to a restarted replay server), Ctrl-C stops "
                    "everything cleanly after a final checkpoint. Shows frames, frames/s, mean episode "
                    "return and ETA. With no flags it runs the demo: "
                    f"--env {DEMO['env_id']} --preset {DEMO['preset']} --agent {DEMO['agent']} "
                    f"--set {DEMO['overrides'][0]} "
                    f"--max-frames {DEMO['max_frames']} --actors {DEMO['actors']} --root-dir {DEMO['root_dir']}. "
                    "Paper setting: --env ALE/Pong-v5 --preset paper --agent attention. "
                    "With --ray ADDRESS the same services run on a Ray cluster (see the Ray cluster flags).")
    add_run_args(p)
    add_root_dir(p, required=False)
    add_max_frames(p, f"emulator frames to train for (default: {DEMO['max_frames']} for the demo, "
                      "else the preset's max_frames)")
    p.add_argument("--actors", type=int, default=None,
                   help=f"actor processes (default: {DEMO['actors']} for the demo, else the preset's num_actors)")
    p.add_argument("--envs-per-actor", type=int, default=None,
                   help="environments per actor (default: the preset's envs_per_actor)")
    p.add_argument("--replay-port", type=int, default=None, help="replay server port (default: a free port)")
    p.add_argument("--actor-threads", type=int, default=1, help="TensorFlow threads per actor (default 1)")
    p.add_argument("--learner-threads", type=int, default=0,
                   help="TensorFlow threads for the learner (default 0: all cores)")
    p.add_argument("--stop-at-return", type=float, default=None, metavar="R",
                   help="stop cleanly (final checkpoint and export) once the mean return over the last 100 "
                        f"training episodes reaches R (default: {DEMO['stop_at_return']} for the demo, "
                        "else train to --max-frames)")
    add_fine_tune(p)
    add_ray_flags(p)
    p.set_defaults(func=run)


def _apply_demo(args) -> bool:
    """With no run-configuration flags (and no S3TA_* variables), selects the demo run."""
    refuse_removed_variables()   # set, they would otherwise be ignored in favour of the demo
    if args.env_id or args.preset or args.overrides:
        return False
    args.env_id, args.preset, args.agent = DEMO["env_id"], DEMO["preset"], DEMO["agent"]
    args.overrides = list(DEMO["overrides"])
    return True


def run(args) -> int:
    from pipelines.rl.launcher import Launcher
    from pipelines.rl.lifecycle import StopFlag

    from pipelines.rl.lifecycle import log
    from s3ta_tf.precision import resolve_precision

    demo = _apply_demo(args)
    spec = run_spec_from_args(args)  # validates every flag before any process starts
    placement = placement_from_args(args)
    if placement:   # a cluster that does not answer stops the run before its root is created
        from pipelines.rl.ray_placement import check_reachable
        check_reachable(placement.address)
    if args.precision:
        log(f"train: precision {spec.agent.precision} ({resolve_precision(args.precision)[1]})")
    def pick(value, demo_value, preset_value):
        return value if value is not None else (demo_value if demo else preset_value)

    max_frames = pick(args.max_frames, DEMO["max_frames"], spec.train.max_frames)
    actors = pick(args.actors, DEMO["actors"], spec.train.num_actors)
    from pipelines.rl.launcher import warn_if_levels_without_actors
    warn_if_levels_without_actors(actors, spec.levels)
    root_dir = args.root_dir or (DEMO["root_dir"] if demo else None)
    if root_dir is None:
        raise ValueError("--root-dir is required (or set S3TA_ROOT_DIR)")
    preflight(spec, root_dir, args)
    run_args = ["--env", spec.train.env_id, "--preset", spec.preset, "--agent", args.agent]
    for item in spec.overrides:
        if not item.startswith(("model.precision=", "train.env_id=")):  # passed as --precision/--env
            run_args += ["--set", item]
    if placement:   # resolved once, here: 'auto' on each node could pick differently
        run_args += ["--precision", spec.agent.precision]
    elif args.precision:
        run_args += ["--precision", args.precision]
    actor_args = ["--tf-threads", str(args.actor_threads)]
    if args.envs_per_actor:
        actor_args += ["--num-envs", str(args.envs_per_actor)]
    learner_args = ["--tf-threads", str(args.learner_threads)]
    if args.fine_tune_from:
        learner_args += ["--fine-tune-from", os.path.abspath(args.fine_tune_from)]
    stop_at_return = pick(args.stop_at_return, DEMO["stop_at_return"], None)
    settings = dict(replay_port=args.replay_port, replay=spec.train.replay, stop_at_return=stop_at_return,
                    learner_args=learner_args, actor_args=actor_args, stop=StopFlag().install())
    if placement:
        return _run_on_ray(root_dir, run_args, actors, max_frames, placement, settings, demo)
    return _finish(Launcher(root_dir, run_args, actors, max_frames, **settings), root_dir, demo)


def _run_on_ray(root_dir, run_args, actors, max_frames, placement, settings, demo) -> int:
    """The run on the Ray cluster; a failure of the run (a service that does not start, a host
    Ray lost, a call that timed out) ends it with one line, exit 1, after its services stopped."""
    import ray

    from pipelines.rl.ray_launcher import RayLauncher

    stop = settings["stop"]
    try:
        return _finish(RayLauncher(root_dir, run_args, actors, max_frames, placement, **settings), root_dir, demo)
    except (RuntimeError, ray.exceptions.RayError) as e:   # (the launcher's run shut its services down)
        say_failed("train", e)
        ray.shutdown()   # (done already unless the launcher failed before its run)
        return 128 + signal.Signals[stop.signal_name].value if stop.signal_name else 1


def say_failed(command: str, e: BaseException) -> None:
    """The error as its detail lines (a log tail), then one line: ``COMMAND: failed: ...``."""
    from pipelines.rl.lifecycle import log

    lines = str(e).strip().splitlines() or [type(e).__name__]
    for line in lines[1:]:
        print(line, flush=True)
    log(f"{command}: failed: {lines[0]}")


def _finish(launcher, root_dir: str, demo: bool) -> int:
    start = time.time()
    code = launcher.run()
    if launcher.stop.signal_name:
        report_stopped(launcher, root_dir, time.time() - start)
    else:
        report_reached(launcher, root_dir, time.time() - start, demo)
    return code


def report_stopped(launcher, root_dir: str, seconds: float) -> None:
    """The last line of a run stopped by Ctrl-C or SIGTERM: how far it got and what it kept
    (the mean return so far, never "reached", which would read as a target met)."""
    from pipelines.rl.launcher import _duration
    from pipelines.rl.learner_log import read_progress
    from pipelines.rl.lifecycle import log

    progress = read_progress(root_dir)
    step, frames = progress.train_step, progress.frames
    when = (f"after {frames:,} frames (train step {step}) in {_duration(seconds)}" if step
            else "before the first update")
    mean, n = launcher.returns.mean, len(launcher.returns.returns)
    so_far = f", mean return {mean:.3f} over the last {n} training episodes" if mean is not None else ""
    log(f"train: stopped by {launcher.stop.signal_name} {when}{so_far}; {launcher.kept()}")


def report_reached(launcher, root_dir: str, seconds: float, demo: bool) -> None:
    """The run's last line: the mean return reached, over how many episodes and frames."""
    from pipelines.rl.launcher import _duration
    from pipelines.rl.learner_log import read_progress
    from pipelines.rl.lifecycle import log

    progress = read_progress(root_dir)
    mean, n = launcher.returns.mean, len(launcher.returns.returns)
    if mean is None:
        log("train: no episode finished")
        return
    line = (f"train: reached mean return {mean:.3f} over the last {n} training episodes after "
            f"{progress.frames:,} frames in {_duration(seconds)}"
            + (" (stopped at the target)" if launcher.stopped_at_target else ""))
    if demo:
        verdict = "solved" if mean >= DEMO["target_return"] else "not solved yet"
        line += (f" ({verdict}: target {DEMO['target_return']:.2f}; a random policy scores about 0.18, "
                 f"the best possible about 0.955)")
    log(line)


def check_root_dir(root_dir: str) -> None:
    """The run's root must be (or become) a writable directory: ValueError naming the fault."""
    if os.path.lexists(root_dir) and not os.path.isdir(root_dir):
        raise ValueError(f"--root-dir {root_dir} is a file; expected a directory (new or a run to resume)")
    try:
        os.makedirs(root_dir, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"--root-dir {root_dir} lies under a file; expected a directory path") from None
    except OSError as e:
        raise ValueError(f"--root-dir {root_dir} cannot be created ({e.strerror})") from None
    probe = os.path.join(root_dir, f".write-test-{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"--root-dir {root_dir} cannot be written ({e.strerror})") from None


def preflight(spec, root_dir: str, args) -> int:
    """Every check that can fail before a service starts; returns the action count."""
    for flag, value, low in (("--max-frames", args.max_frames, 1), ("--actors", args.actors, 1),
                             ("--envs-per-actor", args.envs_per_actor, 1),
                             ("--actor-threads", args.actor_threads, 0),
                             ("--learner-threads", args.learner_threads, 0)):
        if value is not None and value < low:
            raise ValueError(f"{flag} must be >= {low}, got {value}")
    from pipelines.rl.replay import check_port_free

    if args.replay_port is not None:
        if not 1 <= args.replay_port <= 65535:
            raise ValueError(f"--replay-port must be in [1, 65535], got {args.replay_port}")
        if not getattr(args, "ray_address", None):   # (with --ray: free or not on the replay's node)
            check_port_free(args.replay_port, "--replay-port")
    # An unknown id or mismatched levels fail here, not in a service, and before the root
    # directory is created (a refused run leaves nothing behind).
    num_actions = spec.check_levels()
    if args.fine_tune_from:
        from pipelines.rl.learner import checkpoint_to_fine_tune
        checkpoint_to_fine_tune(args.fine_tune_from)
    check_root_dir(root_dir)
    spec.check_record(root_dir, num_actions, args.fine_tune_from)
    check_checkpoints(root_dir)
    return num_actions


def check_checkpoints(root_dir: str) -> None:
    """A run to resume needs a checkpoint that reads: one line names any newer one skipped and
    why (the learner resumes from the newest that reads); ValueError naming every checkpoint and
    its fault if none reads. Before any service starts, instead of a learner that keeps failing."""
    from pipelines.rl.lifecycle import log
    from s3ta_tf.checkpoints import newest_readable_checkpoint

    newest_readable_checkpoint(os.path.join(root_dir, "checkpoints"), say=lambda line: log(f"train: {line}"))
