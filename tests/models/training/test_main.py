"""``python -m models.training`` (and ``layerscope train``): the flags' run, then where its weights are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.training import main
from models.training.config import DESCRIPTION
from models.zoo.tinyweights import read_meta


def test_main_trains_the_flags_recipe_and_says_where_the_weights_are(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--steps", "2", "--batch-size", "11", "--input-size", "64", "--widths", "8,8,8,12,8", "--conv1", "5,2,2",
            "--workers", "0", "--threads", "1", "--out-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    meta = read_meta(tmp_path)
    assert line.startswith("done in ") and f"weights {tmp_path}/tiny.safetensors ({meta['dtype']})" in line
    assert f"validation accuracy {meta['metrics']['validation_accuracy']:.4f}" in line
    assert meta["train_config"]["steps"] == 2 and meta["net"]["widths"] == [8, 8, 8, 12, 8]
    assert "progress" not in meta["train_config"]["extra"]  # a run's display, not its recipe


def test_the_package_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "models.training", "--help"], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[3])
    assert done.stdout.startswith("usage: layerscope train") and DESCRIPTION in " ".join(done.stdout.split())
