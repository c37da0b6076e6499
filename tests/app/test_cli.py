"""The ``layerscope`` command end to end: models, extract, serve, fetch-weights."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.cli import JOBS, main
from app.main import create_app
from app.settings import Settings
from models.zoo import fetch
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_models_table(capsys: pytest.CaptureFixture[str], alexnet_weights: Path) -> None:
    assert main(["models", "--alexnet-weights", str(alexnet_weights)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "available", "trained", "on", "accuracy"]
    assert out[1].startswith("tiny") and out[2].startswith("alexnet")
    assert "yes" in out[2] and "56.52%" in out[2]


def test_models_table_without_alexnet_names_the_fetch_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert main(["models"]) == 0
    assert "layerscope fetch-weights alexnet" in capsys.readouterr().out


def test_extract_matches_the_api(tmp_path: Path, make_image, alexnet_weights: Path) -> None:
    images = []
    for seed in range(3):
        path = tmp_path / f"picture{seed}.jpg"
        path.write_bytes(make_image(200 + seed * 30, 150, "JPEG", seed=seed))
        images.append(path)
    out_dir = tmp_path / "out"
    assert main(["extract", *map(str, images), "--model", "alexnet", "--alexnet-weights",
                 str(alexnet_weights), "--out", str(out_dir)]) == 0
    single = tmp_path / "one.npz"
    assert main(["extract", str(images[0]), "--model", "tiny", "--layers", "features.4,classifier.6",
                 "--out", str(single)]) == 0
    with TestClient(create_app(Settings(alexnet_weights=str(alexnet_weights)))) as client:
        for path in images:
            response = client.post(
                "/api/v1/models/alexnet/activations?format=npz",
                files={"image": (path.name, path.read_bytes(), "image/jpeg")},
            )
            api = np.load(io.BytesIO(response.content))
            cli = np.load(out_dir / f"{path.stem}.npz")
            assert set(cli.files) == set(api.files)
            for name in api.files:
                assert np.array_equal(cli[name], api[name]), name
        response = client.post(
            "/api/v1/models/tiny/activations?format=npz&layers=features.4,classifier.6",
            files={"image": ("a.jpg", images[0].read_bytes(), "image/jpeg")},
        )
        api = np.load(io.BytesIO(response.content))
        cli = np.load(single)
        assert np.array_equal(cli["features.4"], api["features.4"])
        assert np.array_equal(cli["classifier.6"], api["classifier.6"])


def test_extract_reports_bad_files_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    assert main(["extract", str(bad), "--out", str(tmp_path / "o")]) == 1
    captured = capsys.readouterr()
    assert "not an image" in (captured.out + captured.err).lower()
    assert not list((tmp_path / "o").glob("*.npz"))


def test_extract_unknown_layer(tmp_path: Path, make_image) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(make_image(32, 32))
    assert main(["extract", str(path), "--layers", "nope", "--out", str(tmp_path / "x.npz")]) == 2


def test_serve_runs_the_real_server(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TORCH_HOME": str(tmp_path), "LAYERSCOPE_RATE_LIMIT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/models", timeout=5) as r:
            assert b'"tiny"' in r.read()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_fetch_weights_downloads_with_progress_and_hash_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    calls: list[dict[str, object]] = []

    def fake_download(url: str, **kwargs: object) -> dict[str, object]:
        # Stands in for the network only: the real function would write this file.
        calls.append({"url": url, **kwargs})
        target = tmp_path / "hub" / "checkpoints" / os.path.basename(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"weights")
        return {}

    monkeypatch.setattr(fetch.torch.hub, "load_state_dict_from_url", fake_download)
    assert main(["fetch-weights", "alexnet"]) == 0
    assert calls and calls[0]["progress"] is True and calls[0]["check_hash"] is True
    assert str(calls[0]["url"]).endswith("alexnet-owt-7be5be79.pth")
    assert "ready at" in capsys.readouterr().out
    # A second call finds the cached file and downloads nothing.
    assert main(["fetch-weights", "alexnet"]) == 0
    assert len(calls) == 1


def test_dockerfile_uses_the_same_entry_point_as_make_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert cmd == 'CMD ["python", "-m", "app.cli", "serve"]'
    run_recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "$(PY) -m app.cli serve" in run_recipe
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert "USER layerscope" in dockerfile
    # Dependencies are installed before the code is copied, so code edits reuse that layer.
    assert dockerfile.index("pip install -r") < dockerfile.index("COPY app")


def test_model_jobs_hand_their_flags_over(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reliance", "--seed", "77", "--images", "11", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seed"] == 77 and out["images"] == 11
    assert set(JOBS) == {"train", "evaluate", "dissect", "reliance"}
