"""Configuration of distributed V-trace training (SPEC §2) and of the services running it.

``paper`` holds the SPEC §2 numbers (unroll 50, batch 32, RMSProp 2e-4 / ε 0.01 / ρ 0.99,
global-norm clip 1280, baseline cost 0.5, entropy cost 0.01, discount 0.99).
``small`` keeps the V-trace loss but trains on short unrolls (10) in batches of 16 from one
actor with 16 environments, with Adam (lr 5e-4) and entropy cost 0.001, for tests and quick
local runs: the demo's attention agent solves MiniGrid-Empty-5x5 in about 50k frames (a larger
entropy bonus drowns its small advantages: a wasted step costs ~1% of the return). (With
IMPALA's RMSProp, ε = 0.01 inside the square root floors the denominator at 0.1, so the
attention agent's small vision gradients barely move its keys and queries and its policy
stays independent of the frame; docs/LEARNING.md has the diagnosis.) ``atari-cpu`` is the
Atari recipe for a few CPU cores. Presets are data only.

Rewards are clipped by the model's ``AgentConfig.reward_clip`` (±1), which also clips the reward
the model sees. Frames are emulator frames (agent steps × the environment's action repeat).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from s3ta_tf.config.overrides import check_ranges, from_preset

GRADIENT_CLIP_MODES = ("global_norm", "value")
OPTIMIZERS = ("rmsprop", "adam")
ACTOR_ENGINES = ("auto", "vector", "python")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # Environment (SPEC §2 "environment").
    env_id: str = "ALE/Pong-v5"
    full_action_space: bool = False
    sticky_actions: bool = False
    noop_max: Optional[int] = None          # None: the environment's default (30 for ALE)
    max_episode_frames: Optional[int] = None  # None: the environment's default (108,000 for ALE)
    max_pool_frames: bool = True            # ALE: max over the last two frames of each repeat
    # V-trace actor-critic loss (SPEC §2 "loss").
    discount: float = 0.99
    baseline_cost: float = 0.5
    entropy_cost: float = 0.01
    normalize_advantages: bool = False      # standardise A_t over each batch, as PPO does (losses.py)
    clip_rho_threshold: float = 1.0
    clip_pg_rho_threshold: float = 1.0
    clip_c_threshold: float = 1.0
    # Optimiser: RMSProp as in IMPALA (TF1's: ε inside the square root, mean square starting
    # at 1), gradient clipping.
    optimizer: str = "rmsprop"              # or "adam" (the CPU presets; see OPTIMIZERS)
    learning_rate: float = 2e-4
    adam_epsilon: float = 1e-8
    anneal_learning_rate: bool = False      # linearly to 0 at max_frames (IMPALA's schedule)
    rmsprop_epsilon: float = 0.01
    rmsprop_decay: float = 0.99
    rmsprop_momentum: float = 0.0
    rmsprop_initial_mean_square: float = 1.0
    gradient_clip: float = 1280.0
    gradient_clip_mode: str = "global_norm"   # or "value": clip each gradient element to ±clip
    # Trajectories: unroll_length transitions, unroll_length + 1 stored steps.
    unroll_length: int = 50
    batch_size: int = 32
    # Replay service.
    queue_size: int = 128                   # trajectories held by the FIFO queue table
    replay_reuse: int = 1                   # times the learner samples each trajectory (1: IMPALA's
                                            # queue; K > 1: PPO-like reuse, V-trace corrects the lag)
    # Actors.
    num_actors: int = 4
    envs_per_actor: int = 8
    actor_engine: str = "auto"              # "vector": ALE's C++ batched emulator (agents.environments.groups);
                                            # "python": one gymnasium env after another; "auto": vector for ALE
    actor_groups: int = 1                   # vector engine: groups stepped in the background while the
                                            # others act (2: double buffering; slower on 2 cores, PERFORMANCE.md)
    variable_pull_interval: int = 50        # actor steps between variable pulls
    # Learner.
    max_frames: int = 2_000_000_000
    variable_push_interval: int = 1         # learner steps between variable pushes
    summary_interval: int = 10              # learner steps between TensorBoard writes
    jit_compile: bool = False               # XLA for the learner update (slower on CPU here: 59 vs 44 ms)
    checkpoint_interval_secs: float = 600.0
    checkpoints_to_keep: int = 3
    export_interval_steps: int = 10_000     # 0: export only at the end
    seed: int = 0

    @property
    def env_ids(self) -> tuple:
        """The run's environments: ``env_id`` is one id, or several comma-separated (multi-level
        training: one learner, each actor on one of them)."""
        return tuple(e.strip() for e in self.env_id.split(",") if e.strip())

    def __post_init__(self):
        if not self.env_ids:
            raise ValueError(f"train.env_id must name at least one environment, got {self.env_id!r}")
        positive = ("unroll_length", "batch_size", "queue_size", "replay_reuse", "num_actors", "envs_per_actor",
                    "actor_groups",
                    "variable_pull_interval", "max_frames", "variable_push_interval",
                    "summary_interval", "checkpoints_to_keep")
        for name in positive:
            if not getattr(self, name) >= 1:   # (`not x >= 1`: NaN is out of range too)
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        check_ranges(self, "train", non_negative=("noop_max", "export_interval_steps", "seed"),
                     positive=("max_episode_frames",),
                     positive_float=("clip_rho_threshold", "clip_pg_rho_threshold", "clip_c_threshold",
                                     "adam_epsilon", "checkpoint_interval_secs"),
                     non_negative_float=("baseline_cost", "entropy_cost", "rmsprop_momentum",
                                         "rmsprop_initial_mean_square"))
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"train.discount must be in [0, 1], got {self.discount}")
        if not 0.0 <= self.rmsprop_decay < 1.0:
            raise ValueError(f"train.rmsprop_decay must be in [0, 1), got {self.rmsprop_decay}")
        for name in ("learning_rate", "rmsprop_epsilon", "gradient_clip"):
            if not getattr(self, name) > 0:   # (`not x > 0`: NaN is refused too)
                raise ValueError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if self.actor_engine not in ACTOR_ENGINES:
            raise ValueError(f"train.actor_engine must be one of {ACTOR_ENGINES}, got {self.actor_engine!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.gradient_clip_mode not in GRADIENT_CLIP_MODES:
            raise ValueError(f"train.gradient_clip_mode must be one of {GRADIENT_CLIP_MODES}, "
                             f"got {self.gradient_clip_mode!r}")
        if self.queue_size < self.batch_size:
            raise ValueError(f"train.queue_size ({self.queue_size}) must be >= train.batch_size "
                             f"({self.batch_size})")
        self.replay.check(ReplaySettings.TRAIN_NAMES)

    @property
    def sequence_length(self) -> int:
        """Steps stored per trajectory: the unroll plus the bootstrap step shared with the next."""
        return self.unroll_length + 1

    @property
    def replay(self) -> "ReplaySettings":
        """The replay table's settings of this run."""
        return ReplaySettings(self.queue_size, self.replay_reuse, self.batch_size)


@dataclasses.dataclass(frozen=True)
class ReplaySettings:
    """The trajectory table's settings, the one form in which the run's configuration, the
    launcher, the replay command and the table itself (``agents.impala.replay.make_tables``)
    know them.

    ``queue_size``: trajectories the table holds. ``reuse``: times the learner samples each
    trajectory (1: IMPALA's FIFO queue, each sampled once). ``min_size``: with ``reuse`` > 1,
    trajectories stored before the learner may sample, and about how far the actors may run
    ahead of it (a run uses its learner's batch size).
    """
    queue_size: int = TrainConfig.queue_size
    reuse: int = 1
    min_size: int = 1

    NAMES = {"queue_size": "queue_size", "reuse": "reuse", "min_size": "min_size"}
    TRAIN_NAMES = {"queue_size": "train.queue_size", "reuse": "train.replay_reuse", "min_size": "train.batch_size"}
    FLAGS = {"queue_size": "--queue-size", "reuse": "--reuse", "min_size": "--min-size"}

    @classmethod
    def from_flags(cls, args) -> "ReplaySettings":
        """The settings of ``s3ta replay``'s flags, checked (errors name the flags)."""
        return cls(args.queue_size, args.reuse, args.min_size).check(cls.FLAGS)

    def check(self, names: Optional[dict] = None) -> "ReplaySettings":
        """ValueError (naming the settings by ``names``) unless every setting is at least 1 and,
        with reuse, the table holds every item until its last sample; returns the settings."""
        names = names or self.NAMES
        for field in ("queue_size", "reuse", "min_size"):
            if not getattr(self, field) >= 1:
                raise ValueError(f"{names[field]} must be >= 1, got {getattr(self, field)}")
        if self.reuse > 1 and self.queue_size < 2 * self.min_size:
            raise ValueError(f"{names['queue_size']} ({self.queue_size}) must be >= 2 x {names['min_size']} "
                             f"({self.min_size}) with {names['reuse']}={self.reuse}, so that items are not "
                             f"evicted before their {self.reuse} samples")
        return self

    def server_args(self) -> list:
        """The ``s3ta replay`` flags that serve this table (a queue's stay as they always were)."""
        args = ["--queue-size", str(int(self.queue_size))]
        if self.reuse > 1:
            args += ["--reuse", str(int(self.reuse)), "--min-size", str(int(self.min_size))]
        return args

    def describe(self) -> str:
        return (f"queue of {self.queue_size}" if self.reuse == 1 else
                f"{self.queue_size} newest, each sampled {self.reuse} times, from {self.min_size} stored")


# TrainConfig fields a resumed run may change: how long it runs and how it is spread over
# processes, not what it learns (every other field must match the run's record).
RESUMABLE_FIELDS = ("max_frames", "num_actors", "envs_per_actor", "actor_engine", "actor_groups",
                    "queue_size", "variable_pull_interval",
                    "variable_push_interval", "summary_interval", "jit_compile", "checkpoint_interval_secs",
                    "checkpoints_to_keep", "export_interval_steps")


TRAIN_PRESETS = {
    "paper": TrainConfig(),
    "small": TrainConfig(
        optimizer="adam",
        learning_rate=5e-4,
        anneal_learning_rate=True,
        entropy_cost=0.001,
        unroll_length=10,
        batch_size=16,
        queue_size=64,
        num_actors=1,
        envs_per_actor=16,
        variable_pull_interval=10,
        max_frames=200_000,
        summary_interval=5,
        checkpoint_interval_secs=60.0,
        export_interval_steps=1_000,
    ),
    # Atari on a 2-core CPU with the `atari-cpu` model, the recipe that trained Pong to a win
    # (docs/RESULTS.md, run pQ): Adam 5e-4 (its per-parameter normalisation lets the attention
    # agent's small vision gradients move; docs/LEARNING.md §2) annealed to 0 at max_frames,
    # entropy cost 0.002 (at 0.01 the summed, unnormalised advantages lost to the bonus and the
    # policy stayed uniform, §3, §9), unrolls of 20 in batches of 8 from one actor with 16
    # environments (4x the updates per frame of batch 32), a queue of two batches.
    "atari-cpu": TrainConfig(
        optimizer="adam",
        learning_rate=5e-4,
        anneal_learning_rate=True,
        entropy_cost=0.002,
        gradient_clip=40.0,
        unroll_length=20,
        batch_size=8,
        queue_size=16,
        num_actors=1,
        envs_per_actor=16,
        variable_pull_interval=20,
        max_frames=20_000_000,
        summary_interval=20,
        checkpoint_interval_secs=300.0,
        export_interval_steps=2_000,
    ),
}
# The 16x16-map model (s3ta_tf.config.model) trains on the same recipe.
TRAIN_PRESETS["atari-cpu-fine"] = TRAIN_PRESETS["atari-cpu"]


def train_config(preset: str = "paper", overrides=None) -> TrainConfig:
    """The named preset with ``overrides`` (``["field=value", ...]`` or a dict) applied."""
    return from_preset(TRAIN_PRESETS, preset, overrides, "training preset")


# What `s3ta train` (and `make demo`) runs with no flags: the small attention agent on a tiny
# MiniGrid maze with 40x40 pixel observations; it learns to reach the goal in minutes on a CPU.
DEMO = {
    "env_id": "MiniGrid-Empty-5x5-v0",
    "preset": "small",
    "agent": "attention",
    "overrides": ("model.observation_shape=40,40,3",),
    "root_dir": "runs/demo",
    "max_frames": 240_000,
    "actors": 1,
    "target_return": 0.90,
    # Stop once the mean of the last 100 training returns is this close to the optimum (0.955):
    # a run that has solved the maze stops there (~100-160k frames), a slower one gets up to
    # max_frames (docs/LEARNING.md §8).
    "stop_at_return": 0.94,
}
