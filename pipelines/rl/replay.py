"""The replay service: a Reverb server with the trajectory queue and the variables table."""
from __future__ import annotations

from pipelines.rl.lifecycle import StopFlag, log
from pipelines.rl.trajectory import TRAJECTORY_TABLE, VARIABLES_TABLE


def make_tables(queue_size: int) -> list:
    """``trajectories``: FIFO queue of ``queue_size`` items (each sampled once; writers block
    when it is full). ``variables``: the latest variables (one item, samples block until the
    first push)."""
    import reverb

    if queue_size < 1:
        raise ValueError(f"queue_size must be >= 1, got {queue_size}")
    return [
        reverb.Table.queue(TRAJECTORY_TABLE, max_size=queue_size),
        reverb.Table(VARIABLES_TABLE, sampler=reverb.selectors.Uniform(),
                     remover=reverb.selectors.Fifo(), max_size=1,
                     rate_limiter=reverb.rate_limiters.MinSize(1)),
    ]


def start_server(port: int, queue_size: int):
    """Starts (and returns) a ``reverb.Server`` on ``port`` (0: any free port)."""
    import reverb

    return reverb.Server(tables=make_tables(queue_size), port=port or None)


def serve(port: int, queue_size: int, stop: StopFlag) -> int:
    """Runs the server until ``stop`` is set. Returns an exit code."""
    server = start_server(port, queue_size)
    log(f"replay: serving tables '{TRAJECTORY_TABLE}' (queue of {queue_size}) and "
        f"'{VARIABLES_TABLE}' on port {server.port}")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log(f"replay: stopping ({stop.signal_name or 'done'})")
        server.stop()
    return 0
