"""Shared test set-up: quiet TensorFlow, repo root on sys.path, small thread pools."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")   # as the s3ta command runs (pipelines/cli.py)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
