"""The V-trace agent's builder: what a training run is (model variant + AgentConfig +
TrainConfig), and the parts every service of the run makes from it — the environment, the
network, the replay tables — plus the run's record.

Every service of a run (learner, actors) builds the same network from the same
:class:`RunSpec`; the learner records it as the run's ``run.json`` (:mod:`s3ta_tf.run_record`,
kind ``rl``) so that analysis tools can rebuild the model, and refuses to resume a run with a
different one.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

from agents.impala.config import TRAIN_PRESETS, TrainConfig, train_config
from s3ta_tf.config import AGENT_PRESETS, AgentConfig, agent_config, to_dict
from s3ta_tf.config.overrides import split_sections
from s3ta_tf.run_record import has_agent, kind_name, read_record, record_path, write_record


@dataclasses.dataclass(frozen=True)
class RunSpec:
    variant: str
    preset: str
    agent: AgentConfig
    train: TrainConfig
    overrides: tuple = ()          # "section.field=value" strings, sections model and train

    @classmethod
    def from_args(cls, preset: str, variant: str, overrides: Sequence[str] = (),
                  env_id: Optional[str] = None, precision: Optional[str] = None) -> "RunSpec":
        """Presets of both configs with ``section.field=value`` overrides (sections ``model``
        and ``train``); ``env_id`` / ``precision`` are shorthands for ``train.env_id=...`` /
        ``model.precision=...``."""
        if preset not in AGENT_PRESETS or preset not in TRAIN_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(TRAIN_PRESETS)}")
        from s3ta_tf.precision import precision_overrides
        overrides = (tuple(overrides) + tuple(precision_overrides(precision))
                     + ((f"train.env_id={env_id}",) if env_id else ()))
        grouped = split_sections({"model": AgentConfig, "train": TrainConfig}, overrides)
        train = train_config(preset, grouped["train"])
        from agents.environments import is_ale_id
        if len(train.env_ids) > 1 and all(is_ale_id(e) for e in train.env_ids) and not train.full_action_space:
            # Multi-level Atari: one policy over every game, so the full 18-action set (SPEC §2).
            grouped["train"].append("full_action_space=true")
            train = train_config(preset, grouped["train"])
        overrides = tuple(f"{section}.{item}" for section, items in grouped.items() for item in items)
        return cls(variant=variant, preset=preset, agent=agent_config(preset, grouped["model"]),
                   train=train, overrides=overrides)

    # ---- environments
    @property
    def levels(self) -> tuple:
        """The run's environment ids (several for multi-level training)."""
        return self.train.env_ids

    def actor_level(self, actor_id: int) -> int:
        """The environment an actor plays: actors are spread over the levels in turn, so each
        level gets a fixed share (``actor_id mod number of levels``)."""
        return int(actor_id) % len(self.levels)

    def environment_settings(self) -> dict:
        """The run's environment options (the keywords of
        :func:`agents.environments.make_environment`)."""
        t = self.train
        return dict(full_action_space=t.full_action_space, sticky_actions=t.sticky_actions,
                    noop_max=t.noop_max, max_episode_frames=t.max_episode_frames,
                    max_pool_frames=t.max_pool_frames)

    def make_environment(self, seed: Optional[int], level: int = 0):
        """One environment of the run (``levels[level]``) as its model plays it."""
        from agents.environments import environment_for
        return environment_for(self.agent.observation_shape, self.levels[level], seed,
                               **self.environment_settings())

    def environment_seed(self, actor_id: int, index: int) -> int:
        return self.train.seed * 1_000_003 + actor_id * 1_000 + index

    def check_levels(self) -> int:
        """Builds one environment of every level and checks that they agree on the action set
        and the observation shape the model sees; returns the number of actions. ValueError
        naming the levels that differ otherwise (or an unknown id)."""
        from agents.environments import uses_vector

        actions, shapes = {}, {}
        for level, env_id in enumerate(self.levels):
            uses_vector(self.train.actor_engine, env_id, self.train.max_pool_frames)   # (ValueError if it cannot)
            env = self.make_environment(seed=self.train.seed, level=level)
            actions[env_id], shapes[env_id] = env.num_actions, tuple(env.observation_spec().shape)
            env.close()
        for name, values in (("action counts", actions), ("observation shapes", shapes)):
            if len(set(values.values())) > 1:
                raise ValueError(f"the levels of a multi-level run must share {name}; got "
                                 + ", ".join(f"{k}: {v}" for k, v in values.items())
                                 + " (for several ALE games use train.full_action_space=true)")
        return next(iter(actions.values()))

    # ---- the network
    def build_network(self, num_actions: int):
        from agents.impala.networks import ActorCriticNetwork
        return ActorCriticNetwork.from_config_and_variant(self.agent, self.variant, num_actions)

    # ---- the replay tables
    def make_tables(self) -> list:
        from agents.impala.replay import make_tables
        return make_tables(self.train.replay)

    # ---- the run record (run.json)
    def to_json(self, num_actions: int) -> dict:
        return {"kind": "rl", "variant": self.variant, "preset": self.preset,
                "num_actions": int(num_actions), "env_id": self.train.env_id,
                "overrides": list(self.overrides),
                "agent_config": to_dict(self.agent), "train_config": to_dict(self.train)}

    def write_or_check(self, root_dir: str, num_actions: int, fine_tune_from: Optional[str] = None) -> None:
        """Writes ``root_dir/run.json`` (atomically), or checks that an existing record (also a
        legacy ``config.json``) describes this run — the model, the environment and every
        learning setting (:data:`agents.impala.config.RESUMABLE_FIELDS` may change: run length,
        actors, intervals) — and raises ValueError naming each differing field if not."""
        write_record(root_dir, self.check_record(root_dir, num_actions, fine_tune_from))

    def check_record(self, root_dir: str, num_actions: int, fine_tune_from: Optional[str] = None) -> dict:
        """The record this run would write to ``root_dir``; ValueError (naming every differing
        field) if ``root_dir`` already records another run, or if ``fine_tune_from`` records a
        model whose weights do not fit this one."""
        mine = json.loads(json.dumps(self.to_json(num_actions)))  # tuples -> lists, as stored
        if fine_tune_from:
            check_fine_tune_source(fine_tune_from, mine)
            mine["fine_tuned_from"] = os.path.abspath(fine_tune_from)
        path = record_path(root_dir)
        if path is not None:
            theirs = read_record(root_dir)
            if theirs.get("kind") != "rl":
                raise ValueError(f"{root_dir} holds {kind_name(theirs)} ({os.path.basename(path)}), not an "
                                 f"RL training run; use a new --root-dir")
            differences = record_differences(theirs, mine)
            if differences:
                start_from = (f"start a new run from its weights: --root-dir NEW --fine-tune-from {root_dir}"
                              if not weight_differences(theirs, mine) else
                              "use a new --root-dir (its weights do not fit this model, so --fine-tune-from "
                              "cannot start from them)")
                raise ValueError(
                    f"{root_dir} holds another run ({os.path.basename(path)}): "
                    + summarize_differences(theirs, mine, differences)
                    + f". Resume it with the same flags, or {start_from}")
            if theirs.get("fine_tuned_from"):
                mine["fine_tuned_from"] = theirs["fine_tuned_from"]
        return {k: v for k, v in mine.items() if v is not None}


MAX_LISTED_DIFFERENCES = 5
# Model fields that shape no weight: a checkpoint fits a model that differs only in these.
NOT_IN_WEIGHTS = {"precision", "initial_query_scale", "query_basis_gain", "reward_clip"}


def weight_differences(theirs: dict, mine: dict) -> list:
    """The differences between two records' networks that stop one's weights from loading into
    the other (``["agent: recorded A, this run B", ...]``): the variant, the action count and
    the model fields that shape weights."""
    out = [f"{label}: recorded {theirs[key]!r}, this run {mine[key]!r}"
           for key, label in (("variant", "agent"), ("num_actions", "num_actions"))
           if key in theirs and theirs[key] != mine[key]]
    a, b = theirs.get("agent_config") or {}, mine.get("agent_config") or {}
    return out + [f"model.{field}: recorded {a[field]!r}, this run {b[field]!r}"
                  for field in sorted(set(a) & set(b) - NOT_IN_WEIGHTS) if a[field] != b[field]]


def check_fine_tune_source(source: str, mine: dict) -> None:
    """``--fine-tune-from source`` (a run root or a checkpoint directory) must record a network
    whose weights fit this run's (checked against its run record before any service starts);
    ValueError naming what differs. A source without a record is left to the restore."""
    directory = os.path.join(source, "checkpoints")
    directory = directory if os.path.isdir(directory) else source
    if record_path(directory, search_parent=True) is None:
        return
    theirs = read_record(directory, search_parent=True)
    if not has_agent(theirs):
        raise ValueError(f"--fine-tune-from {source} holds {kind_name(theirs)}, not an agent network; "
                         f"expected an RL run's root or checkpoints directory")
    differences = weight_differences(theirs, mine)
    if differences:
        shown = "; ".join(differences[:MAX_LISTED_DIFFERENCES])
        more = f"; and {len(differences) - MAX_LISTED_DIFFERENCES} more" if len(differences) > MAX_LISTED_DIFFERENCES else ""
        raise ValueError(f"--fine-tune-from {source}: its weights do not fit this run's model ({shown}{more}); "
                         f"fine-tuning keeps the agent, the action count and the layer sizes (the game and the "
                         f"learning settings may change)")


def summarize_differences(theirs: dict, mine: dict, differences: list) -> str:
    """One short clause for the refusal: the preset first when it differs (then the differing
    fields are its consequences, so only their names are listed), at most
    :data:`MAX_LISTED_DIFFERENCES` fields, then "and N more"."""
    preset_differs = "preset" in theirs and theirs["preset"] != mine.get("preset")
    if preset_differs:
        names = [d.split(":", 1)[0] for d in differences]
        shown = ", ".join(names[:MAX_LISTED_DIFFERENCES])
        more = f" and {len(names) - MAX_LISTED_DIFFERENCES} more" if len(names) > MAX_LISTED_DIFFERENCES else ""
        return (f"preset differs: run has {theirs['preset']!r}, you asked for {mine.get('preset')!r} "
                f"({len(names)} field(s) differ: {shown}{more})")
    text = "; ".join(differences[:MAX_LISTED_DIFFERENCES])
    if len(differences) > MAX_LISTED_DIFFERENCES:
        text += f"; and {len(differences) - MAX_LISTED_DIFFERENCES} more"
    return text


def record_differences(theirs: dict, mine: dict) -> list:
    """``["section.field: recorded A, this run B", ...]`` for the fields that make two records
    different runs. Compute precision may differ (machines differ); fields that only one of the
    records knows (added or removed since) are not compared."""
    from agents.impala.config import RESUMABLE_FIELDS

    out = []
    for key, label in (("variant", "agent"), ("num_actions", "num_actions"), ("env_id", "env")):
        if key in theirs and theirs[key] != mine[key]:
            out.append(f"{label}: recorded {theirs[key]!r}, this run {mine[key]!r}")
    for key, section, skip in (("agent_config", "model", {"precision"}),
                               ("train_config", "train", set(RESUMABLE_FIELDS) | {"env_id"})):
        a, b = theirs.get(key) or {}, mine.get(key) or {}
        for field in sorted(set(a) & set(b) - skip):
            if a[field] != b[field]:
                out.append(f"{section}.{field}: recorded {a[field]!r}, this run {b[field]!r}")
    return out
