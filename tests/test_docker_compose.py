"""docker/compose.yaml and docker/Dockerfile, checked without a Docker engine.

The compose file is validated against the official Compose Specification JSON schema (the copy
vendored by the ``check-jsonschema`` package), then checked for what ``docker compose up
--scale actor=8`` needs, and every ``s3ta`` command in it is parsed by the project's own CLI
parser with the service's environment applied.
"""
import importlib.resources
import json
import pathlib
import re

import jsonschema
import pytest
from ruamel.yaml import YAML

from pipelines import cli
from pipelines.commands.flags import run_overrides

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
S3TA_SERVICES = ("replay", "learner", "actor")
ROOT_DIR = "/runs"


# ---------------------------------------------------------------- helpers

def load_compose(path=COMPOSE):
    return YAML(typ="safe", pure=True).load(path.read_text())


def compose_schema():
    path = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(path.read_text())


def schema_errors(document):
    schema = compose_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\})")


def interpolate(value, env):
    """Compose variable substitution: ``$$``, ``${VAR}``, ``${VAR-default}``, ``${VAR:-default}``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match):
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name", "op", "default")
        if op == ":-" and not env.get(name):
            return default
        if op == "-" and name not in env:
            return default
        if name not in env:
            raise AssertionError(f"compose.yaml uses ${{{name}}} without a default")
        return env[name]

    rest = _VARIABLE.sub("", value)
    assert "${" not in rest, f"unsupported interpolation in {value!r}"
    return _VARIABLE.sub(substitute, value)


def service_environment(service, host_env=None):
    """The container environment of ``service`` when compose runs with ``host_env``."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in interpolate(env, host_env or {}).items()}


def dockerfile_instruction(name):
    lines = [line for line in DOCKERFILE.read_text().splitlines()
             if line.strip().upper().startswith(name + " ")]
    assert lines, f"Dockerfile has no {name} instruction"
    return lines[-1].split(None, 1)[1].strip()


@pytest.fixture(scope="module")
def compose():
    return load_compose()


# ---------------------------------------------------------------- the schema

def test_compose_file_is_valid_compose_spec(compose):
    assert schema_errors(compose) == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["services"]["actor"].update(comand=["actor"]), "'comand' was unexpected"),
    (lambda d: d["services"]["replay"]["healthcheck"].update(interval=5), "services/replay"),
    (lambda d: d.update(volume={}), "'volume' does not match"),
])
def test_schema_rejects_broken_files(compose, mutate, expected):
    """Negative control: the validator really checks the file."""
    broken = load_compose()
    mutate(broken)
    errors = schema_errors(broken)
    assert errors and any(expected in e for e in errors), errors


# ---------------------------------------------------------------- what `up --scale actor=N` needs

def test_services(compose):
    assert set(compose["services"]) == {"replay", "learner", "actor", "tensorboard"}


def test_actor_is_scalable(compose):
    actor = compose["services"]["actor"]
    for fixed in ("container_name", "hostname", "ports", "mac_address"):
        assert fixed not in actor, f"actor sets {fixed}: `--scale actor=N` needs it unset"
    assert actor.get("scale", 1) >= 1 and "replicas" not in actor.get("deploy", {})
    # No other service publishes a host port twice.
    published = [str(p).split(":")[0] for s in compose["services"].values()
                 for p in interpolate(s.get("ports", []), {})]
    assert len(published) == len(set(published))


def test_root_dir_is_a_named_volume_mounted_everywhere(compose):
    assert "runs" in compose["volumes"]
    for name in S3TA_SERVICES + ("tensorboard",):
        service = compose["services"][name]
        assert f"runs:{ROOT_DIR}" in service["volumes"], f"{name} does not mount runs:{ROOT_DIR}"
    for name in S3TA_SERVICES:   # each run gets its own directory inside the volume
        root = service_environment(compose["services"][name])["S3TA_ROOT_DIR"]
        assert root == f"{ROOT_DIR}/default"
        assert service_environment(compose["services"][name], {"S3TA_RUN": "pong-1"})[
            "S3TA_ROOT_DIR"] == f"{ROOT_DIR}/pong-1"


def test_startup_order_and_healthcheck(compose):
    services = compose["services"]
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
    for name in ("learner", "actor"):
        assert services[name]["depends_on"]["replay"]["condition"] == "service_healthy"
    assert "learner" in services["actor"]["depends_on"]
    test = services["replay"]["healthcheck"]["test"]
    assert test[0] == "CMD" and "8000" in " ".join(test)


def test_replay_address_matches_replay_port(compose):
    services = compose["services"]
    address = service_environment(services["actor"])["S3TA_REPLAY_ADDRESS"]
    host, port = address.split(":")
    assert host == "replay"
    assert service_environment(services["learner"])["S3TA_REPLAY_ADDRESS"] == address
    replay_cmd = interpolate(services["replay"]["command"], {})
    assert replay_cmd[replay_cmd.index("--port") + 1] == port
    assert port in [str(p) for p in services["replay"]["expose"]]


# ---------------------------------------------------------------- commands are real subcommands

def test_image_entrypoint_is_s3ta():
    assert dockerfile_instruction("FROM") == "${BASE_IMAGE}"       # ARG BASE_IMAGE=python:3.11-slim
    assert json.loads(dockerfile_instruction("ENTRYPOINT")) == ["s3ta"]
    text = DOCKERFILE.read_text()
    assert "pip install -r requirements.txt" in text and "pip install --no-deps ." in text
    assert "-r requirements-dev" not in text and "requirements-dev.txt ." not in text  # runtime only
    runtime = {line.split("==")[0].lower() for line in (REPO / "requirements.txt").read_text().splitlines()
               if "==" in line}
    dev = (REPO / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev
    assert {"tensorflow", "dm-reverb", "tf-agents", "ale-py"} <= runtime
    assert not runtime & {"pytest", "scikit-learn", "scipy", "pytest-timeout"}


def parse_service(compose, name, host_env, monkeypatch):
    """Parses service ``name``'s command with the s3ta CLI inside its container environment."""
    service = compose["services"][name]
    assert "entrypoint" not in service, "s3ta services use the image's s3ta entrypoint"
    for key, value in service_environment(service, host_env).items():
        monkeypatch.setenv(key, value)
    argv = [str(a) for a in interpolate(service["command"], host_env)]
    parser = cli.build_parser()   # env-var defaults are read when the parsers are built
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"`s3ta {' '.join(argv)}` (service {name}) is rejected by the CLI parser "
                    f"(exit {e.code})")


@pytest.mark.parametrize("name", S3TA_SERVICES)
def test_service_command_is_a_real_s3ta_subcommand(compose, name, monkeypatch):
    args = parse_service(compose, name, {}, monkeypatch)
    assert args.command == name and callable(args.func)
    if name == "replay":
        assert args.port == 8000
    else:   # with nothing set on the host, the CLI's own defaults apply
        assert args.replay_address == "replay:8000" and args.root_dir == f"{ROOT_DIR}/default"
        assert run_overrides(args) == []


@pytest.mark.parametrize("name", ["learner", "actor"])
def test_host_settings_reach_the_services(compose, name, monkeypatch):
    host = {"S3TA_ENV": "MiniGrid-Empty-5x5-v0", "S3TA_PRESET": "small", "S3TA_AGENT": "lstm",
            "S3TA_SET": "model.observation_shape=40,40,3 train.batch_size=4 train.seed=3",
            "S3TA_RUN": "grid"}
    args = parse_service(compose, name, host, monkeypatch)
    assert (args.env_id, args.preset, args.agent) == ("MiniGrid-Empty-5x5-v0", "small", "lstm")
    assert run_overrides(args) == ["model.observation_shape=40,40,3", "train.batch_size=4", "train.seed=3"]
    assert args.root_dir == f"{ROOT_DIR}/grid"


@pytest.mark.parametrize("name", ["learner", "actor"])
@pytest.mark.parametrize("var, section", [("S3TA_MODEL_SET", "model"), ("S3TA_TRAIN_SET", "train")])
def test_removed_override_variables_are_refused_by_the_services(compose, name, var, section, monkeypatch):
    args = parse_service(compose, name, {var: "seed=3"}, monkeypatch)   # passed on, not dropped
    with pytest.raises(ValueError, match=f"{var} was removed in 0.2.0; use S3TA_SET with {section}.FIELD=VALUE"):
        run_overrides(args)


def test_cli_parser_rejects_unknown_subcommand():
    """Negative control for the test above."""
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["no-such-subcommand"])


def test_tensorboard_serves_the_runs_volume(compose):
    tb = compose["services"]["tensorboard"]
    assert tb["entrypoint"] == ["tensorboard"]
    cmd = interpolate(tb["command"], {})
    assert cmd[cmd.index("--logdir") + 1] == ROOT_DIR and "--bind_all" in cmd
    assert [str(p).split(":")[-1] for p in interpolate(tb["ports"], {})] == ["6006"]


def test_the_image_is_built_once_from_the_repository(compose):
    building = [name for name, service in compose["services"].items() if "build" in service]
    assert building == ["replay"]          # one build; every service runs the same tag
    build = compose["services"]["replay"]["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
    assert interpolate(build["args"]["BASE_IMAGE"], {}) == "python:3.11-slim"
    assert interpolate(build["args"]["BASE_IMAGE"], {"S3TA_BASE_IMAGE": "local/py:3.11"}) == "local/py:3.11"
    for name, service in compose["services"].items():
        assert service["image"] == "s3ta-tf:latest" and service["pull_policy"] == "never", name
    assert "ARG BASE_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignore and ".git" in ignore


def test_build_context_leaves_out_what_the_image_does_not_run():
    def entries(path):
        return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    buildkit, classic = entries(DOCKER / "Dockerfile.dockerignore"), entries(REPO / ".dockerignore")
    assert buildkit == classic         # BuildKit reads the first, the classic builder the second
    assert {".git", ".venv", "runs", "results", "docs", "tests"} <= set(buildkit)
    assert "README.md" not in buildkit  # setup.cfg's long_description reads it at pip install


def test_interpolation_helper():
    assert interpolate("${A:-x}", {}) == "x" and interpolate("${A:-x}", {"A": ""}) == "x"
    assert interpolate("${A-x}", {"A": ""}) == "" and interpolate("${A}", {"A": "v"}) == "v"
    assert interpolate("$$HOME ${A:-1}:${B:-2}", {}) == "$HOME 1:2"
    with pytest.raises(AssertionError, match="without a default"):
        interpolate("${A}", {})
