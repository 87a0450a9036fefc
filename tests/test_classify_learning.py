"""Learning check on real images: scikit-learn's digits through TFDS's ImageFolder.

The small S3TA classifier (tiny ResNet v2, 2 heads, T = 4, 8×8 digits upsampled to 32×32)
trained through the `s3ta classify` commands must reach > 90% top-1 on the held-out quarter
of the digits (1797 images shipped inside the scikit-learn package), and its attention over
the 4 steps is drawn.
"""
from __future__ import annotations

import json

from PIL import Image

from classify_fixtures import make_digits_folder
from pipelines.cli import main as cli_main
import pytest

pytestmark = pytest.mark.slow   # see setup.cfg's markers: `make test-fast` leaves it out

# Digits must not be mirrored or recoloured; the crop stays gentle on 8x8 sources.
DIGIT_SETTINGS = ["data.horizontal_flip=false", "data.color_distortion=0",
                  "data.crop_area_min=0.8", "train.summary_every=100"]


def test_small_s3ta_learns_digits_and_draws_attention(tmp_path, capsys):
    counts = make_digits_folder(str(tmp_path / "digits"))
    assert counts == {"train": 1348, "test": 449}
    common = ["--data-dir", str(tmp_path / "data"), "--manual-dir", str(tmp_path / "digits"),
              "--root-dir", str(tmp_path / "run")]
    sets = [a for s in DIGIT_SETTINGS for a in ("--set", s)]
    assert cli_main(["classify", "train", "--dataset", "image_folder", "--preset", "small",
                     "--steps", "400", "--no-progress", *common, *sets]) == 0
    capsys.readouterr()
    assert cli_main(["classify", "eval", "--no-progress", *common]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "test" and result["examples"] == 449
    assert result["top1"] > 0.90, result
    out = str(tmp_path / "attention.png")
    assert cli_main(["classify", "attention", "--out", out, "--num-examples", "3",
                     *common]) == 0
    with Image.open(out) as img:
        w, h = img.size
    assert w > 300 and h > 300     # 3 examples x 2 heads rows, 1 + 4 step columns
