"""Scoring agents the way the papers do: the evaluation protocol (:mod:`.protocol`) and
human-normalised scores (:mod:`.scores`)."""
