"""Configuration of population-based training: the population, the segment length, when
evolution starts, and the evolved hyperparameters with their bounds (agent paper, A.1.2)."""
from __future__ import annotations

import dataclasses
from typing import Tuple

from s3ta_tf.config.overrides import check_ranges, from_preset

# Evolved TrainConfig fields -> (low, high) bounds; sampled and perturbed on a log scale.
# "epsilon" is the epsilon of the run's optimiser (rmsprop_epsilon or adam_epsilon).
HYPERPARAMETERS = {
    "learning_rate": (1e-5, 1e-2),
    "entropy_cost": (1e-4, 5e-2),
    "epsilon": (1e-8, 1e-1),
    "gradient_clip": (1.0, 1e4),
}

# TrainConfig overrides every member trains with, applied after the user's. PBT evolves the
# learning rate itself, and a member trains in segments (`s3ta train --max-frames <segment
# end>`), so an annealed rate (frames / max_frames) would fall to 0 at the end of every segment.
MEMBER_OVERRIDES = ("train.anneal_learning_rate=false",)


@dataclasses.dataclass(frozen=True)
class PBTConfig:
    population: int = 16
    interval_frames: int = 2_000_000     # frames per segment: members report (and may exploit) after each
    ready_frames: int = 20_000_000       # evolution begins after this many frames (burn-in)
    quantile: float = 0.25               # the bottom quantile copies the top one
    perturbation_factors: Tuple[float, ...] = (1.2, 0.8)
    resample_probability: float = 0.25
    actors_per_member: int = 1           # at least one per level: a member gets max(this, levels)
    # Synchronous PBT waits for every member at each segment boundary before exploiting (the
    # paper's PBT is asynchronous; a small population on a busy machine evolves reliably only
    # in step: otherwise one member may finish before the other has reported at all).
    synchronous: bool = False

    def __post_init__(self):
        check_ranges(self, "pbt", positive=("population", "interval_frames", "actors_per_member"),
                     non_negative=("ready_frames",))
        if not 0 < self.quantile <= 0.5:
            raise ValueError(f"pbt.quantile must be in (0, 0.5], got {self.quantile}")


PBT_PRESETS = {
    "paper": PBTConfig(),
    # A population that evolves on a 2-core machine within minutes (tests, quick looks).
    "small": PBTConfig(population=2, interval_frames=4_000, ready_frames=4_000, quantile=0.5,
                       synchronous=True),
}


def pbt_config(preset: str = "paper", overrides=None) -> PBTConfig:
    return from_preset(PBT_PRESETS, preset, overrides, "PBT preset")


def clip_to_bounds(config: dict) -> dict:
    """``config`` with every evolved hyperparameter clipped into its bounds."""
    out = dict(config)
    for name, (low, high) in HYPERPARAMETERS.items():
        if name in out:
            out[name] = float(min(max(out[name], low), high))
    return out


def train_overrides(hyper: dict, optimizer: str) -> list:
    """The ``train.field=value`` overrides that give a member its hyperparameters."""
    epsilon_field = "adam_epsilon" if optimizer == "adam" else "rmsprop_epsilon"
    names = {"learning_rate": "learning_rate", "entropy_cost": "entropy_cost",
             "epsilon": epsilon_field, "gradient_clip": "gradient_clip"}
    return [f"train.{names[k]}={v!r}" for k, v in hyper.items() if k in names]
