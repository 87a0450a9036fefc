"""Population-based training (Jaderberg et al. 2017) of the V-trace agent on Ray Tune: each
member is a full training run (``s3ta train``: replay, learner, actors), trained in segments of
``interval`` frames; between segments Ray Tune's PBT scheduler copies a better member's
checkpoint (exploit) and perturbs its hyperparameters within bounds (explore)."""
