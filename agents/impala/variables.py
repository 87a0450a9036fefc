"""The learner → actors variable channel: one ``[version, *variables]`` item in a Reverb table.

``version`` is the learner's train step when the variables were pushed; actors record it in
every trajectory so the learner can measure the policy lag.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from agents.impala.replay import VARIABLES_TABLE


def push_variables(client, version: int, variables: Sequence) -> None:
    """Replaces the table's item by ``[version, *variables]`` (the table holds one item)."""
    data = [np.asarray(version, np.int64)] + [np.asarray(v) for v in variables]
    client.insert(data, priorities={VARIABLES_TABLE: 1.0})


def pull_variables(client, timeout: float = 10.0) -> Optional[tuple]:
    """``(version, [arrays])`` of the latest push, or None if nothing was pushed yet."""
    info = client.server_info(timeout=int(timeout))[VARIABLES_TABLE]
    if info.current_size == 0:
        return None
    sample = next(client.sample(VARIABLES_TABLE, num_samples=1))
    data = sample[0].data
    return int(data[0]), list(data[1:])


def assign_variables(variables: Sequence, values: Sequence) -> None:
    """Assigns pulled ``values`` to ``variables``; ValueError if they do not match (a learner
    and an actor started with different model flags)."""
    if len(variables) != len(values):
        raise ValueError(f"the learner pushed {len(values)} variables but this model has "
                         f"{len(variables)}: start actors with the learner's --preset/--agent/--set")
    for var, value in zip(variables, values):
        if tuple(var.shape) != tuple(np.shape(value)):
            raise ValueError(f"variable {var.name} has shape {tuple(var.shape)} but the learner pushed "
                             f"{np.shape(value)}: start actors with the learner's model flags")
        var.assign(value)
