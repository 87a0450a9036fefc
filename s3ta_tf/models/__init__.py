"""Keras models of s3ta-tf."""
from s3ta_tf.models.agent import Agent, build_agent

__all__ = ["Agent", "build_agent"]
