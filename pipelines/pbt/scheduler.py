"""Ray Tune's PopulationBasedTraining with one fix for synchronous mode: failed members.

In synchronous mode a member that reaches a segment boundary pauses until every *live* member
has reached it. Ray Tune 2.55 keeps a member that failed (status ERROR) among the controller's
live trials, with the frames of its last report, so the others would wait for it at the next
boundary forever. Here a failed member counts as having reached every boundary: the others
exploit and explore among themselves (a failed member is out of the quantiles, as Ray already
treats it) and go on. If the others were already waiting when it failed, the boundary is passed
without an exploit.

The same wait has a second cause: a member whose last report arrives together with the end of
its function is completed by Ray (``on_trial_complete``) without passing through the synchronous
step, so a member already paused at that boundary would wait forever (seen when the two members
of a population reached ``max_frames`` seconds apart). A completed member releases the waiting
ones as a failed one does; ``run_pbt`` also stops a member at ``max_frames`` (Tune's ``stop``), so
that no member is paused at the final boundary at all. This module imports Ray at the top: only
``s3ta pbt`` loads it.
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
        if self._synch:
            self._count_failed_as_arrived()
            self._release_waiting(tune_controller, trial)

    def on_trial_complete(self, tune_controller, trial, result):
        super().on_trial_complete(tune_controller, trial, result)
        if self._synch:
            self._release_waiting(tune_controller, trial)

    def _release_waiting(self, tune_controller, gone) -> None:
        """If every other live member is paused at the boundary (waiting for one that failed or
        finished), the boundary is passed without an exploit."""
        others = [t for t in tune_controller.get_live_trials()
                  if t is not gone and t not in self._failed and not t.is_finished()]
        times = [self._trial_state[t].last_train_time for t in others if t in self._trial_state]
        if others and len(times) == len(others) and min(times) >= self._next_perturbation_sync:
            self._next_perturbation_sync = max(self._next_perturbation_sync + self._perturbation_interval,
                                               max(times))
