"""Distributed V-trace training services: replay (Reverb), actors, learner, local launcher.

Each service runs as its own process (``s3ta replay|actor|learner``); ``s3ta train`` starts
them all on localhost. See docs/DISTRIBUTED.md for running actors on other hosts.
"""
