"""Shared test set-up: quiet TensorFlow, repo root on sys.path, small thread pools."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")   # as the s3ta command runs (pipelines/cli.py)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The files that take minutes run first, so that under pytest-xdist (`make test`: one file per
# worker at a time) no worker is left with a long file at the end while the other idles.
# Scheduling only: a file missing from this list just runs in its usual place.
LONGEST_FIRST = ("test_services_learning.py", "test_pbt.py", "test_faults_checkpoints_waiting.py",
                 "test_services_faults.py", "test_ray_cluster.py", "test_services.py",
                 "test_classify_learning.py", "test_research.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = os.path.basename(str(item.fspath))
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)   # stable: the order inside a file, and of the other files, is kept
