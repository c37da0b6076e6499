"""The zoo rows still run: one small ImageNet model, random weights, a few repetitions."""

from __future__ import annotations

import os

from bench import zoo
from bench.common import Config


def test_zoo_rows_for_one_model() -> None:
    home = os.environ.get("TORCH_HOME")
    rows = zoo.run(Config(reps=2, quick=True, extra={"zoo_models": ("mobilenet_v3_small",)}))
    assert os.environ.get("TORCH_HOME") == home  # the run's temporary cache is gone again
    by_name = {row.name: row for row in rows}
    assert [row.model for row in rows] == ["mobilenet_v3_small"] * 6
    assert by_name["bare forward"].ratio == 1.0 and (by_name["bare forward"].ms or 0) > 0
    capture = by_name["capture + encode (ready to send)"]
    assert capture.ratio is not None and capture.ratio > 1.0
    size = by_name["JSON size, default layers"]
    assert size.unit == "KB" and 50 < (size.value or 0) < 1000 and size.status == "pass"
    assert (by_name["RSS after loading"].value or 0) > 100
