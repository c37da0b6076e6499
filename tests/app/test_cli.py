"""The ``layerscope`` command end to end: models, extract, serve, fetch-weights."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
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
from models.zoo import fetch, tinyweights
from tests.conftest import free_port, publish

ROOT = Path(__file__).resolve().parents[2]


def tiny_accuracy() -> str:
    return f"{tinyweights.read_meta()['metrics']['accuracy'] * 100:.2f}%"


def one_error_line(err: str) -> str:
    """The failure's whole stderr, which must be one line in the one shape."""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("layerscope: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_models_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, alexnet_weights: Path
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models", "--alexnet-weights", str(alexnet_weights)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "available", "verified", "accuracy", "trained", "on"]
    assert out[1].split()[:4] == ["tiny", "yes", "yes", tiny_accuracy()]
    # Random test weights under their own name: served, but not torchvision's file.
    assert out[2].split()[:4] == ["alexnet", "yes", "NO", "-"]
    assert "unverified" in out[2] and "ImageNet" not in out[2]
    assert all(len(line) <= 80 for line in out), out
    # The header, one line per model, and a line naming the file that is not the expected one.
    assert len(out) == 4 and alexnet_weights.name in out[3]


def test_models_table_fits_the_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    trained_on = tinyweights.read_meta()["trained_on"]
    assert len(trained_on) > 300  # the paragraph the table must not print whole
    for columns in (50, 100, 1000):
        monkeypatch.setenv("COLUMNS", str(columns))
        assert main(["models", "--alexnet-weights", str(ROOT / "README.md")]) == 0  # a file, not weights
        out = capsys.readouterr().out.splitlines()
        table = [line for line in out if not line.startswith("alexnet: not available")]
        assert all(len(line) <= columns for line in table), (columns, out)
        tiny = next(line for line in out if line.startswith("tiny"))
        if columns < len(trained_on):
            assert tiny.endswith("...") and trained_on not in tiny
        else:
            assert tiny.endswith(trained_on)


def test_models_json_is_the_api_listing(capsys: pytest.CaptureFixture[str], alexnet_weights: Path) -> None:
    assert main(["models", "--json", "--alexnet-weights", str(alexnet_weights)]) == 0
    listed = json.loads(capsys.readouterr().out)
    with TestClient(create_app(Settings(alexnet_weights=str(alexnet_weights)))) as client:
        assert listed == client.get("/api/v1/models").json()["models"]
    by_id = {m["id"]: m for m in listed}
    assert by_id["alexnet"]["weights"] == {
        "file": alexnet_weights.name,
        "sha256": hashlib.sha256(alexnet_weights.read_bytes()).hexdigest(),
        "verified": False,
    }
    assert by_id["tiny"]["weights"]["verified"] is True


def test_models_table_without_alexnet_names_the_fetch_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[:3] == ["alexnet", "no", "-"]
    assert "alexnet: not available; run `layerscope fetch-weights alexnet`" in out


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


WEIGHTS = b"stand-in weights"
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()


def test_fetch_weights_downloads_with_progress_and_hash_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # A published name that carries the stand-in file's own digest prefix, as torchvision's do.
    url = f"https://example.invalid/models/alexnet-owt-{WEIGHTS_SHA[:8]}.pth"
    publish(monkeypatch, "alexnet", url)
    calls: list[dict[str, object]] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        # Stands in for the network only: the real function writes the file after checking it.
        calls.append({"url": url, "dst": dst, "hash_prefix": hash_prefix, "progress": progress})
        Path(dst).write_bytes(WEIGHTS)

    monkeypatch.setattr(fetch.torch.hub, "download_url_to_file", fake_download)
    assert main(["fetch-weights", "alexnet"]) == 0
    target = tmp_path / "hub" / "checkpoints" / f"alexnet-owt-{WEIGHTS_SHA[:8]}.pth"
    assert calls == [{"url": url, "dst": str(target), "hash_prefix": WEIGHTS_SHA[:8], "progress": True}]
    assert f"ready at {target}" in capsys.readouterr().out
    # A second call finds the verified file and downloads nothing.
    assert main(["fetch-weights", "alexnet"]) == 0
    assert len(calls) == 1


def test_the_real_alexnet_url_carries_its_hash_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    seen: list[tuple[str, str | None]] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        seen.append((url, hash_prefix))
        Path(dst).write_bytes(WEIGHTS)

    monkeypatch.setattr(fetch.torch.hub, "download_url_to_file", fake_download)
    assert fetch.fetch_weights("alexnet") == tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert seen == [("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79")]


def test_a_cached_file_that_is_not_the_published_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(WEIGHTS)  # sha256 6b8f..., not 7be5be79...
    assert main(["fetch-weights", "alexnet"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(cached) in line and WEIGHTS_SHA[:8] in line and "delete it" in line


def test_a_download_with_the_wrong_hash_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def bad_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{WEIGHTS_SHA}")')  # torch.hub's words

    monkeypatch.setattr(fetch.torch.hub, "download_url_to_file", bad_download)
    assert main(["fetch-weights", "alexnet"]) == 1
    assert "sha256" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").exists()


def test_fetch_without_a_network_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    # The discard port on this machine: nothing listens, the connection is refused.
    publish(monkeypatch, "alexnet", "http://127.0.0.1:9/models/alexnet-owt-7be5be79.pth")
    assert main(["fetch-weights", "alexnet"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "could not download" in line and "fetch-weights alexnet" in line


@pytest.fixture
def picture(tmp_path: Path, make_image) -> Path:
    path = tmp_path / "a.png"
    path.write_bytes(make_image(32, 32))
    return path


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        ([], 2, "required"),
        (["nope"], 2, "invalid choice"),
        (["models", "--bogus"], 2, "unrecognized"),
        (["models", "--alexnet-weights", "/nope/alexnet.pth"], 2, "/nope/alexnet.pth does not exist"),
        (["models", "--alexnet-weights", "/"], 2, "is not a file"),
        (["fetch-weights", "resnet"], 2, "no torchvision classifier is called 'resnet' (did you mean resnet"),
        (["fetch-weights", "zzz"], 2, "no torchvision classifier is called 'zzz'; `layerscope models --all`"),
        (["extract", "/nope/cat.jpg", "--out", "{tmp}/o"], 2, "no picture at /nope/cat.jpg"),
        (["extract", "{picture}", "--model", "resnet", "--out", "{tmp}/o"], 2, "unknown model 'resnet'"),
        (["extract", "{picture}", "--layers", "nope", "--out", "{tmp}/x.npz"], 2, "unknown layer"),
        (["extract", "{picture}", "{picture}", "--out", "{tmp}/x.npz"], 2, "several pictures"),
        (["extract", "{picture}", "--model", "alexnet", "--out", "{tmp}/o"], 2, "fetch-weights alexnet"),
        (["extract", "{picture}", "--out", "/proc/none/o"], 1, "/proc/none"),
        (["serve", "--port", "http"], 2, "not a port number"),
        (["serve", "--port", "70000"], 2, "not a port number"),
        (["serve", "--model", "resnet"], 2, "unknown model"),
        (["serve", "--port", "{busy}"], 1, "cannot listen"),
        (["evaluate", "--nope"], 2, "unrecognized arguments: --nope"),
        (["dissect", "--images", "many"], 2, "invalid int value: 'many'"),
        (["reliance", "--model", "alexnet"], 2, "invalid choice: 'alexnet'"),
        (["train", "--widths", "1,2"], 2, "--widths takes five numbers"),
        (["train", "--parts-task", "names", "--parts-weight", "0"], 2, "--parts-task needs"),
    ],
)
def test_every_expected_failure_is_one_line(
    argv: list[str], status: int, words: str, picture: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no AlexNet weights
    monkeypatch.delenv("LAYERSCOPE_ALEXNET_WEIGHTS", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        values = {"tmp": str(tmp_path), "picture": str(picture), "busy": str(busy.getsockname()[1])}
        assert main([arg.format(**values) for arg in argv]) == status
    captured = capsys.readouterr()
    assert words in one_error_line(captured.err), captured.err
    assert captured.out == ""


def test_bad_settings_from_the_environment_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAYERSCOPE_PORT", "eighty")
    assert main(["serve"]) == 2
    assert "LAYERSCOPE_PORT" in one_error_line(capsys.readouterr().err)
    monkeypatch.delenv("LAYERSCOPE_PORT")
    monkeypatch.setenv("LAYERSCOPE_MODELS", "tiny,resnet")
    assert main(["models"]) == 2
    assert "unknown model 'resnet'" in one_error_line(capsys.readouterr().err)


def test_failures_from_a_real_process_are_one_line(tmp_path: Path) -> None:
    # Any proxy is this machine's discard port, so the download cannot leave it.
    offline = {"http_proxy": "http://127.0.0.1:9/", "https_proxy": "http://127.0.0.1:9/",
               "HTTP_PROXY": "http://127.0.0.1:9/", "HTTPS_PROXY": "http://127.0.0.1:9/",
               "no_proxy": "", "NO_PROXY": "", "TORCH_HOME": str(tmp_path)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAYERSCOPE_")} | offline
    for argv, status in (
        (["fetch-weights", "alexnet"], 1),
        (["models", "--alexnet-weights", "/nope"], 2),
        (["extract", "--frobnicate", "x.png"], 2),
        (["evaluate", "--images", "-"], 2),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == status, (argv, done.stderr)
        one_error_line(done.stderr)
    assert not (tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").exists()


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
