"""The errors a user sees as one line (``s3ta: error: ...``) instead of a traceback; the CLI
(:mod:`pipelines.cli`) maps each to its exit code."""
from __future__ import annotations


class CliError(Exception):
    """A user-facing error: printed as ``s3ta: error: ...`` with exit code ``exit_code`` (2:
    bad input), no traceback."""
    exit_code = 2


class DivergenceError(CliError):
    """Training cannot go on: the updates keep coming out non-finite (exit code 1). Raised by
    the RL learner and the classifier's training loop; the last good checkpoint is kept."""
    exit_code = 1
