"""The pinned stack holds: NumPy 1.26 and protobuf 4.25 under TensorFlow 2.15, and Ray Tune (for
population-based training) imports beside them (pyarrow >= 20 would need NumPy 2)."""
import subprocess
import sys


def test_ray_tune_imports_beside_numpy_1_26_and_protobuf_4_25():
    code = ("import numpy, google.protobuf, ray; from ray import tune; "
            "from ray.tune.schedulers import PopulationBasedTraining; "
            "print(numpy.__version__, google.protobuf.__version__, ray.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    numpy_version, protobuf_version, ray_version = out.stdout.split()
    assert numpy_version.startswith("1.26.") and protobuf_version.startswith("4.25.")
    assert ray_version == "2.55.0"
