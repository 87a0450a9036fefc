"""The layout by feature: one override grammar, one run record, the removed spellings refused."""
import json
import subprocess
import sys

import pytest

from agents.impala.builder import RunSpec
from agents.impala.config import TrainConfig
from pipelines.commands import flags
from s3ta_tf.config import AgentConfig
from s3ta_tf.config.overrides import split_sections
from s3ta_tf.run_record import read_record, record_path, write_record

SECTIONS = {"model": AgentConfig, "train": TrainConfig}


def test_section_overrides_group_by_section():
    grouped = split_sections(SECTIONS, ["model.num_heads=2", "train.batch_size=4"], warn=None)
    assert grouped == {"model": ["num_heads=2"], "train": ["batch_size=4"]}


def test_a_bare_field_is_refused_naming_its_section():
    for item, full in (("num_heads=2", "model.num_heads=2"), ("learning_rate=1e-3", "train.learning_rate=1e-3")):
        with pytest.raises(ValueError, match=f"removed in 0.2.0; use --set {full}$"):
            split_sections(SECTIONS, [item], warn=None)


@pytest.mark.parametrize("item, message", [
    ("optimiser.lr=1", "unknown section 'optimiser'"),
    ("no_such_field=1", "field 'no_such_field' is in no section"),
    ("num_heads", "expected the form section.field=value"),
])
def test_bad_overrides_name_the_fault(item, message):
    with pytest.raises(ValueError, match=message):
        split_sections(SECTIONS, [item], warn=None)


def test_a_field_in_two_sections_must_be_qualified():
    @__import__("dataclasses").dataclass
    class A:
        seed: int = 0

    @__import__("dataclasses").dataclass
    class B:
        seed: int = 0

    with pytest.raises(ValueError, match="several sections"):
        split_sections({"a": A, "b": B}, ["seed=1"], warn=None)
    assert split_sections({"a": A, "b": B}, ["b.seed=1"], warn=None) == {"a": [], "b": ["seed=1"]}


def test_reward_clip_has_one_home():
    assert "reward_clip" in {f.name for f in __import__("dataclasses").fields(AgentConfig)}
    assert "reward_clip" not in {f.name for f in __import__("dataclasses").fields(TrainConfig)}


def test_run_flags(monkeypatch):
    from pipelines import cli
    monkeypatch.delenv("S3TA_SET", raising=False)
    args = cli.build_parser().parse_args(
        ["learner", "--root-dir", "/tmp/x", "--preset", "small", "--set", "model.observation_shape=40,40,3",
         "--set", "train.batch_size=4", "--set", "train.seed=3"])
    assert flags.run_overrides(args) == ["model.observation_shape=40,40,3", "train.batch_size=4", "train.seed=3"]
    spec = flags.run_spec_from_args(args)
    assert spec.agent.observation_shape == (40, 40, 3) and spec.train.batch_size == 4 and spec.train.seed == 3


@pytest.mark.parametrize("command", ["learner", "actor", "train", "pbt"])
@pytest.mark.parametrize("argv, env, message", [
    (["--train-set", "seed=3"], {}, "--train-set was removed in 0.2.0; use --set train.FIELD=VALUE"),
    (["--train-set"], {}, "--train-set was removed in 0.2.0; use --set train.FIELD=VALUE"),
    (["--set", "unroll_length=5"], {}, "a bare field=value was removed in 0.2.0; use --set train.unroll_length=5"),
    ([], {"S3TA_MODEL_SET": "num_heads=2"}, "S3TA_MODEL_SET was removed in 0.2.0; use S3TA_SET with model."),
    ([], {"S3TA_TRAIN_SET": "seed=3"}, "S3TA_TRAIN_SET was removed in 0.2.0; use S3TA_SET with train."),
])
def test_removed_spellings_are_refused_in_one_line(command, argv, env, message, monkeypatch, capsys, tmp_path):
    from cli_fixtures import fails
    monkeypatch.delenv("S3TA_SET", raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    root = [] if command == "train" and not argv else ["--root-dir", str(tmp_path / "run")]
    frames = ["--max-frames", "1000"] if command == "pbt" else []
    err = fails(capsys, command, *root, *frames, "--preset", "small", *argv)
    assert message in err and f"s3ta {command}: error:" in err
    assert not (tmp_path / "run").exists()


def test_train_refuses_removed_variables_before_choosing_the_demo(monkeypatch, capsys):
    from cli_fixtures import fails
    monkeypatch.setenv("S3TA_TRAIN_SET", "seed=3")
    assert "S3TA_TRAIN_SET was removed in 0.2.0" in fails(capsys, "train")


def test_a_bare_seq_len_is_refused_naming_the_flag():
    from pipelines.classify.config import classify_config
    with pytest.raises(ValueError, match="removed in 0.2.0; use --seq-len 6$"):
        classify_config("small", ["seq_len=6"])


def test_one_run_record_and_legacy_records_still_read(tmp_path):
    spec = RunSpec.from_args("small", "attention", ["model.num_heads=1", "train.seed=2"],
                             env_id="MiniGrid-Empty-5x5-v0")
    spec.write_or_check(str(tmp_path), 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    record = read_record(str(tmp_path / "checkpoints"), search_parent=True)
    assert record["kind"] == "rl" and record["num_actions"] == 7
    assert record["overrides"] == ["model.num_heads=1", "train.seed=2", "train.env_id=MiniGrid-Empty-5x5-v0"]
    with pytest.raises(ValueError, match="holds another run"):
        RunSpec.from_args("small", "attention", ["model.num_heads=2"]).write_or_check(str(tmp_path), 7)
    # A run root written before the layout (config.json) resumes, and gains a run.json.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps({k: v for k, v in spec.to_json(7).items() if k != "kind"}))
    assert record_path(str(legacy)).endswith("config.json")
    spec.write_or_check(str(legacy), 7)
    assert (legacy / "run.json").exists() and (legacy / "config.json").exists()
    with pytest.raises(ValueError, match="kind"):
        write_record(str(tmp_path), {"kind": "something"})


def test_checkpoint_directory_finds_its_record(tmp_path):
    from s3ta_tf import agent_config, build_agent_net
    from s3ta_tf.checkpoints import has_model_record, load_agent_net, save_checkpoint
    model = build_agent_net(agent_config("small"), "feedforward", 3)
    save_checkpoint(str(tmp_path / "ckpt"), model)
    assert read_record(str(tmp_path / "ckpt"))["kind"] == "model"
    assert load_agent_net(str(tmp_path / "ckpt")).variant == "feedforward"
    # A legacy checkpoint directory (model_config.json beside it) still loads.
    (tmp_path / "ckpt" / "run.json").rename(tmp_path / "ckpt" / "model_config.json")
    record = json.loads((tmp_path / "ckpt" / "model_config.json").read_text())
    (tmp_path / "ckpt" / "model_config.json").write_text(json.dumps(
        {"config": record["agent_config"], "variant": record["variant"], "num_actions": record["num_actions"]}))
    assert load_agent_net(str(tmp_path / "ckpt")).num_actions == 3
    assert not has_model_record(str(tmp_path / "empty"))


def test_removed_public_names_name_their_replacements():
    code = ("import s3ta_tf, s3ta_tf.models, s3ta_tf.checkpoints\n"
            "for module, name, new in ((s3ta_tf, 'build_agent', 'build_agent_net'), (s3ta_tf, 'Agent', 'AgentNet'),\n"
            "                          (s3ta_tf.models, 'Agent', 'AgentNet'), (s3ta_tf.checkpoints, 'load_agent', 'load_agent_net')):\n"
            "    try:\n"
            "        getattr(module, name)\n"
            "    except AttributeError as e:\n"
            "        assert 'removed in 0.2.0' in str(e) and new in str(e), e\n"
            "    else:\n"
            "        raise AssertionError(name)\n"
            "assert s3ta_tf.AgentNet is s3ta_tf.models.AgentNet\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_imports_no_heavy_library():
    """pipelines/cli.py's docstring: building the parser loads no TensorFlow, Reverb, environments or plots."""
    code = ("import sys, pipelines.cli as c; c.build_parser()\n"
            "heavy = [m for m in ('tensorflow', 'reverb', 'ale_py', 'gymnasium', 'tensorflow_datasets', "
            "'tf_agents', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
