"""docker/smoke-test.sh: the compose stack end to end (build, train, TensorBoard, a crashed actor,
down/up resume). It needs a Docker engine; without one it is reported skipped with the reason."""
import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow   # see setup.cfg's markers: `make test-fast` leaves it out

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def docker_engine() -> str:
    """'' if a Docker engine with Compose v2 answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "no Docker daemon answers (docker info failed)"
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        return "docker compose (Compose v2) is not installed"
    return ""


@pytest.mark.timeout(2400)
def test_compose_stack_smoke_test():
    why_not = docker_engine()
    if why_not:
        pytest.skip(f"docker/smoke-test.sh needs a Docker engine: {why_not}")
    proc = subprocess.run(["bash", os.path.join(REPO, "docker", "smoke-test.sh")], cwd=REPO,
                          capture_output=True, text=True, timeout=2300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke test passed" in proc.stdout
    for step in ("the learner's train step advances", "TensorBoard answers",
                 "a crashed actor is restarted", "the learner resumes from its checkpoint"):
        assert step in proc.stdout
