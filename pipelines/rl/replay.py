"""The replay service: a Reverb server with the V-trace agent's tables (agents.impala.replay)."""
from __future__ import annotations

from agents.impala.config import ReplaySettings
from agents.impala.replay import TRAJECTORY_TABLE, VARIABLES_TABLE, make_tables
from pipelines.rl.lifecycle import StopFlag, log


def check_port_free(port: int, flag: str = "--port") -> None:
    """ValueError naming ``flag`` if ``port`` is out of range or already taken (0: any port)."""
    import socket

    if not 0 <= port <= 65535:
        raise ValueError(f"{flag} must be in [0, 65535], got {port}")
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            raise ValueError(f"{flag} {port}: the port is already in use; choose another one") from None


def check_address(address: str, flag: str = "--replay-address") -> str:
    """``address`` if it has the form host:port (a host name, an IPv4 address or an [IPv6]
    address; a port in 1..65535), else ValueError naming ``flag`` and the expected form. Checked
    before a service starts: Reverb would otherwise wait for such an address for ever."""
    host, _, port = address.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if (not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535 or not bare
            or any(c.isspace() or c in "/[]" for c in bare) or (":" in bare and bare == host)):
        raise ValueError(f"{flag} {address!r}: expected host:port with a port in 1..65535 "
                         f"(e.g. localhost:8000, replay:8000 or [::1]:8000)")
    return address


def start_server(port: int, settings: ReplaySettings):
    """Starts (and returns) a ``reverb.Server`` with the tables of ``settings`` on ``port`` (0: any
    free port)."""
    import reverb

    try:
        return reverb.Server(tables=make_tables(settings), port=port or None)
    except ValueError as e:   # gRPC's "Failed to BuildAndStart" (its log says: address already in use)
        if "BuildAndStart" not in str(e):
            raise
        raise ValueError(f"port {port}: the port is already in use (the replay server could not bind it); "
                         f"choose another one") from None


def serve(port: int, settings: ReplaySettings, stop: StopFlag) -> int:
    """Runs the server until ``stop`` is set. Returns an exit code."""
    server = start_server(port, settings)
    log(f"replay: serving tables '{TRAJECTORY_TABLE}' ({settings.describe()}) and "
        f"'{VARIABLES_TABLE}' on port {server.port}")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log(f"replay: stopping ({stop.signal_name or 'done'})")
        server.stop()
    return 0
