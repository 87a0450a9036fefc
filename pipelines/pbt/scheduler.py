"""Ray Tune's PopulationBasedTraining with one fix for synchronous mode: failed members.

In synchronous mode a member that reaches a segment boundary pauses until every *live* member
has reached it. Ray Tune 2.55 keeps a member that failed (status ERROR) among the controller's
live trials, with the frames of its last report, so the others would wait for it at the next
boundary forever. Here a failed member counts as having reached every boundary: the others
exploit and explore among themselves (a failed member is out of the quantiles, as Ray already
treats it) and go on. If the others were already waiting when it failed, the boundary is passed
without an exploit. This module imports Ray at the top: only ``s3ta pbt`` loads it.
"""
from __future__ import annotations

from ray.tune.schedulers import PopulationBasedTraining


class PopulationBasedTrainingWithFailures(PopulationBasedTraining):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._failed = set()

    def _count_failed_as_arrived(self) -> None:
        for trial in self._failed:
            if trial in self._trial_state:
                state = self._trial_state[trial]
                state.last_train_time = max(state.last_train_time, self._next_perturbation_sync)

    def on_trial_result(self, tune_controller, trial, result):
        if self._synch:
            self._count_failed_as_arrived()
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial):
        super().on_trial_error(tune_controller, trial)
        self._failed.add(trial)
        if not self._synch:
            return
        self._count_failed_as_arrived()
        others = [t for t in tune_controller.get_live_trials() if t not in self._failed and not t.is_finished()]
        times = [self._trial_state[t].last_train_time for t in others if t in self._trial_state]
        if others and len(times) == len(others) and min(times) >= self._next_perturbation_sync:
            # Everyone else is paused at this boundary, waiting for the failed member: release them.
            self._next_perturbation_sync = max(self._next_perturbation_sync + self._perturbation_interval,
                                               max(times))
