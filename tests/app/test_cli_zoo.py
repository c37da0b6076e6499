"""The command line for every model: ``models --all``, ``fetch-weights NAME``, ``--config``, the start-up lines."""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from app.cli import main
from models.zoo import fetch
from models.zoo import torchvision_zoo as zoo
from tests.app.test_cli import ROOT, one_error_line
from tests.conftest import free_port
from tests.models.zoo.test_custom import BUILDER

WEIGHTS = b"stand-in resnet weights"
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.delenv("LAYERSCOPE_ALEXNET_WEIGHTS", raising=False)
    monkeypatch.delenv("LAYERSCOPE_CONFIG", raising=False)
    return home


def test_models_all_lists_every_known_model_and_whether_its_weights_are_here(
    torch_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    cached = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"present")
    config = tmp_path / "own.toml"
    config.write_text('[models.birch]\narchitecture = "resnet18"\nweights = "birch.pth"\nclasses = ["a"]\n')
    assert main(["models", "--all", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "group", "weights", "file,", "or", "how", "to", "get", "it"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert len(rows) == 1 + len(zoo.classification_models()) + 1 == len(out) - 1
    assert rows["tiny"][:3] == ["tiny", "embedded", "yes"]
    assert rows["resnet18"] == ["resnet18", "imagenet", "yes", str(cached)]
    assert rows["vgg16"] == ["vgg16", "imagenet", "no", "run", "`layerscope", "fetch-weights", "vgg16`"]
    assert rows["birch"] == ["birch", "custom", "no", "fix", "[models.birch]", "in", str(config)]
    assert main(["models", "--all", "--json"]) == 0
    listed = {m["id"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["resnet18"] == {"id": "resnet18", "group": "imagenet", "weights_file": str(cached),
                                  "present": True, "how_to_get": None}
    assert listed["convnext_tiny"]["how_to_get"] == "layerscope fetch-weights convnext_tiny"


def test_fetch_weights_works_for_any_zoo_name(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"https://example.invalid/models/resnet18-{WEIGHTS_SHA[:8]}.pth"
    monkeypatch.setattr(zoo, "weights_url", lambda name: url if name == "resnet18" else "")
    calls: list[dict[str, object]] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append({"url": url, "dst": dst, "hash_prefix": hash_prefix, "progress": progress})
        Path(dst).write_bytes(WEIGHTS)

    monkeypatch.setattr(fetch.torch.hub, "download_url_to_file", fake_download)
    assert main(["fetch-weights", "resnet18"]) == 0
    target = torch_home / "hub" / "checkpoints" / f"resnet18-{WEIGHTS_SHA[:8]}.pth"
    assert calls == [{"url": url, "dst": str(target), "hash_prefix": WEIGHTS_SHA[:8], "progress": True}]
    assert f"resnet18 ImageNet weights ready at {target}" in capsys.readouterr().out
    assert main(["fetch-weights", "resnet18"]) == 0  # verified already: nothing downloaded
    assert len(calls) == 1
    target.write_bytes(b"tampered")
    assert main(["fetch-weights", "resnet18"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "is not the published file" in line and "`layerscope fetch-weights resnet18` again" in line


@pytest.mark.parametrize(("name", "file"), [("mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth"),
                                            ("efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth")])
def test_the_real_urls_carry_their_hash_prefix(
    name: str, file: str, torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str, str | None]] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        seen.append((url, dst, hash_prefix))
        Path(dst).write_bytes(WEIGHTS)

    monkeypatch.setattr(fetch.torch.hub, "download_url_to_file", fake_download)
    assert fetch.fetch_weights(name) == torch_home / "hub" / "checkpoints" / file
    prefix = file.rsplit("-", 1)[1].split(".")[0]
    assert seen == [(f"https://download.pytorch.org/models/{file}", str(torch_home / "hub" / "checkpoints" / file),
                     prefix)]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["fetch-weights", "resnet9000"], "no torchvision classifier is called 'resnet9000'"),
        (["serve", "--config", "/nope/own.toml"], "the configuration file /nope/own.toml does not exist"),
        (["models", "--config", "{bad}"], "is not valid TOML"),
        (["serve", "--model", "mine"], "unknown model 'mine'"),
    ],
)
def test_zoo_and_config_failures_are_one_line(
    argv: list[str], words: str, torch_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.x\n")
    assert main([arg.format(bad=bad) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert words in one_error_line(captured.err) and captured.out == ""


def test_serve_says_what_it_serves_and_how_to_fetch_the_rest(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAYERSCOPE_")}
    env |= {"TORCH_HOME": str(tmp_path), "LAYERSCOPE_MODELS": "tiny,alexnet,resnet18"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    wanted = [
        "layerscope: serving tiny",
        "layerscope: alexnet is listed without its weights; fetch them with: layerscope fetch-weights alexnet",
        "layerscope: resnet18 is listed without its weights; fetch them with: layerscope fetch-weights resnet18",
    ]
    seen: list[str] = []
    assert process.stderr is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + 120
            while not all(line in seen for line in wanted) and time.monotonic() < deadline:
                if selector.select(timeout=1):
                    line = process.stderr.readline()
                    if not line:
                        break
                    seen.append(line.rstrip("\n"))
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()
    assert [line for line in seen if line.startswith("layerscope:")] == wanted, seen


def test_extract_reads_your_own_model_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_image
) -> None:
    module = f"clinets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(BUILDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(8)
    network = __import__(module).build().eval()
    save_file(network.state_dict(), str(tmp_path / "mine.safetensors"))
    config = tmp_path / "own.toml"
    config.write_text(f'[models.mine]\nbuilder = "{module}:build"\nweights = "mine.safetensors"\n'
                      'classes = ["a", "b", "c"]\ninput_size = 64\nmean = [0.5, 0.5, 0.5]\nstd = [0.25, 0.25, 0.25]\n')
    picture = tmp_path / "a.png"
    picture.write_bytes(make_image(80, 64))
    out = tmp_path / "a.npz"
    assert main(["extract", str(picture), "--model", "mine", "--config", str(config), "--out", str(out)]) == 0
    with np.load(out) as arrays:
        assert set(arrays.files) == {"1", "2", "5", "6", "logits", "probabilities"}
        assert arrays["6"].shape == (16, 16, 16) and arrays["probabilities"].shape == (3,)


def test_models_names_a_broken_configured_model_and_why(
    torch_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    config = tmp_path / "own.toml"
    config.write_text('[models.birch]\narchitecture = "resnet18"\nweights = "birch.pth"\nclasses = ["a"]\n')
    assert main(["models", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out[1:4]] == [["tiny", "yes"], ["alexnet", "no"], ["birch", "no"]]
    assert f"birch: not available: [models.birch] in {config}: weights file {tmp_path}/birch.pth does not exist." in out
