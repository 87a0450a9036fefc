"""What a training run is: model variant + AgentConfig + TrainConfig, shared by all services.

Every service of a run (learner, actors) builds the same network from the same
:class:`RunSpec`; the learner records it as ``config.json`` in the root directory so that
analysis tools can rebuild the model, and refuses to resume a run with a different one.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

from s3ta_tf.config import AGENT_PRESETS, agent_config, from_dict, to_dict, AgentConfig
from s3ta_tf.atomic_io import write_json_atomic
from s3ta_tf.config.training import TRAIN_PRESETS, TrainConfig, train_config

CONFIG_FILE = "config.json"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    variant: str
    preset: str
    agent: AgentConfig
    train: TrainConfig
    model_overrides: tuple = ()
    train_overrides: tuple = ()

    @classmethod
    def from_args(cls, preset: str, variant: str, model_overrides: Sequence[str] = (),
                  train_overrides: Sequence[str] = (), env_id: Optional[str] = None,
                  precision: Optional[str] = None) -> "RunSpec":
        """Presets of both configs with overrides; ``env_id`` / ``precision`` are shorthands for
        ``train_overrides`` ``env_id=...`` / ``model_overrides`` ``precision=...``."""
        if preset not in AGENT_PRESETS or preset not in TRAIN_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(TRAIN_PRESETS)}")
        if precision:
            from s3ta_tf.precision import resolve_precision
            precision, _ = resolve_precision(precision)
        model_overrides = tuple(model_overrides) + ((f"precision={precision}",) if precision else ())
        train_overrides = tuple(train_overrides) + ((f"env_id={env_id}",) if env_id else ())
        return cls(variant=variant, preset=preset, agent=agent_config(preset, list(model_overrides)),
                   train=train_config(preset, list(train_overrides)),
                   model_overrides=model_overrides, train_overrides=train_overrides)

    # ---- environments
    def make_environment(self, seed: Optional[int]):
        """One environment of the run, observations resized to the model's input shape."""
        from agents.environments import make_environment
        t = self.train
        return make_environment(t.env_id, seed=seed, full_action_space=t.full_action_space,
                                sticky_actions=t.sticky_actions, noop_max=t.noop_max,
                                max_episode_frames=t.max_episode_frames,
                                observation_shape=self.agent.observation_shape,
                                max_pool_frames=t.max_pool_frames)

    def environment_seed(self, actor_id: int, index: int) -> int:
        return self.train.seed * 1_000_003 + actor_id * 1_000 + index

    # ---- the network
    def build_network(self, num_actions: int):
        from agents.networks import AgentNetwork
        return AgentNetwork.from_config_and_variant(self.agent, self.variant, num_actions)

    # ---- config.json
    def to_json(self, num_actions: int) -> dict:
        return {"variant": self.variant, "preset": self.preset, "num_actions": int(num_actions),
                "env_id": self.train.env_id, "model_overrides": list(self.model_overrides),
                "train_overrides": list(self.train_overrides),
                "agent_config": to_dict(self.agent), "train_config": to_dict(self.train)}

    def write_or_check(self, root_dir: str, num_actions: int) -> None:
        """Writes ``root_dir/config.json`` (atomically), or checks an existing one describes
        the same model (variant, AgentConfig, num_actions) and raises ValueError if not."""
        path = os.path.join(root_dir, CONFIG_FILE)
        mine = json.loads(json.dumps(self.to_json(num_actions)))  # tuples -> lists, as stored
        if os.path.exists(path):
            with open(path) as f:
                theirs = json.load(f)
            for key in ("variant", "num_actions", "agent_config"):
                a, b = theirs.get(key), mine[key]
                if key == "agent_config" and isinstance(a, dict):  # compute precision may differ by machine
                    a, b = {**a, "precision": None}, {**b, "precision": None}
                if a != b:
                    raise ValueError(
                        f"{path} describes a different run ({key}: {theirs.get(key)!r}, this run: "
                        f"{mine[key]!r}); use another --root-dir or the same model flags to resume")
        write_json_atomic(path, mine)


def load_run_config(root_dir: str) -> tuple:
    """``(variant, AgentConfig, num_actions)`` from a run's ``config.json``, to rebuild its model."""
    path = os.path.join(root_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {root_dir!r} the --root-dir of a training run?")
    with open(path) as f:
        data = json.load(f)
    return data["variant"], from_dict(AgentConfig, data["agent_config"]), int(data["num_actions"])
