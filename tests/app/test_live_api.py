"""Watch it learn, end to end: off unless allowed, a stream that parses, maps of the network as it is, stoppable."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torchvision.transforms._presets import ImageClassification

from app.main import create_app
from app.services import live as live_service
from models.layers import DEFAULT_LAYERS
from models.training.live import LiveConfig
from models.training.loop import Trainee
from tests.app.conftest import make_settings
from tests.app.test_api import decode_atlas
from tests.app.test_fairness import LIMIT_S, client_at, running, until
from tests.app.test_teach_api import parse_events
from tests.conftest import data_files, opened_files

LIVE = "/api/v1/live"
MEAN = torch.tensor([0.42, 0.418, 0.415])[:, None, None]
STD = torch.tensor([0.234, 0.231, 0.232])[:, None, None]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(live_training=True, models="tiny"))) as c:
        yield c


def png_pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_off_unless_the_operator_allows_it() -> None:
    with TestClient(create_app(make_settings(models="tiny"))) as c:
        response = c.post(LIVE, params={"seconds": 5})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "LAYERSCOPE_LIVE_TRAINING=1" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"seconds": 2}, {"seconds": 181}, {"seconds": "long"}, {"budget": 10},
                                    {"budget": 5000}])
def test_bad_parameters_are_422_problems(client: TestClient, params: dict[str, Any]) -> None:
    response = client.post(LIVE, params=params)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


def test_a_second_run_is_refused_while_one_runs(client: TestClient) -> None:
    gate: live_service.LiveGate = client.app.state.live  # type: ignore[attr-defined]
    gate.running = True
    response = client.post(LIVE, params={"seconds": 5})
    gate.running = False
    assert response.status_code == 409 and response.headers["retry-after"] == "30"
    assert response.json()["type"].endswith("live-run-busy")


def test_a_run_streams_its_progress_and_the_first_maps_are_the_first_weights(
    client: TestClient, make_image: Any
) -> None:
    upload = make_image(200, 150, seed=3)
    response = client.post(LIVE, params={"seconds": 5}, content=upload, headers={"content-type": "image/png"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    events = parse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "result" and set(kinds[1:-1]) == {"progress"}
    start, first, result = events[0][1], events[1][1], events[-1][1]
    assert start["seconds"] == 5 and start["budget"] is None and start["layers"] == list(DEFAULT_LAYERS)

    # The picture as the network sees it, by torchvision's own preset (resize, centre crop, normalize).
    preset = ImageClassification(crop_size=128, resize_size=128, mean=MEAN.flatten().tolist(),
                                 std=STD.flatten().tolist())
    x = preset(Image.open(io.BytesIO(upload)).convert("RGB"))
    shown = ((x * STD + MEAN) * 255).round().clamp(0, 255).permute(1, 2, 0).numpy().astype(int)
    assert np.abs(png_pixels(start["picture"]).astype(int) - shown).max() <= 1

    # Before any step the network is the recipe's first weights: its maps, by a plain forward with hooks.
    torch.manual_seed(0)
    network = Trainee.build(LiveConfig().recipe()).model.eval()  # BatchNorm and all, in evaluation mode
    seen: dict[str, torch.Tensor] = {}
    modules = dict(network.net.named_modules())  # the MiniAlexNet's names of the same modules
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone())) for name in DEFAULT_LAYERS]
    with torch.no_grad():
        network(x[None])
    for handle in handles:
        handle.remove()
    assert first["step"] == 0
    for layer in first["layers"]:
        reference = seen[layer["name"]][0].numpy()
        step = (np.array(layer["hi"]) - np.array(layer["lo"]))[:, None, None] / 510
        assert (np.abs(decode_atlas(layer) - reference) <= step + 1e-5).all()

    assert result["step"] > 0 and result["elapsed_s"] >= 5
    fresh = result["learners"]["fresh"]
    assert fresh["pictures_seen"] == result["step"] * 32 and len(fresh["loss"]) >= 1
    assert 0 <= fresh["val_accuracy"][-1] <= 1
    assert not np.array_equal(png_pixels(first["filters"]["png"]), png_pixels(result["filters"]["png"]))
    assert result["filters"]["shape"][:2] == [32, 3]


def test_a_data_budget_run_reports_both_learners(client: TestClient) -> None:
    events = parse_events(client.post(LIVE, params={"seconds": 5, "budget": 64}).text)
    result = events[-1][1]
    assert events[0][1]["budget"] == 64
    assert set(result["learners"]) == {"fresh", "budget"} and result["learners"]["budget"]["pool"] == 64


def test_closing_the_stream_stops_the_run() -> None:
    async def scenario(url_live: Any) -> None:
        async with client_at(url_live, "127.0.0.9") as http, http.stream(
            "POST", LIVE, params={"seconds": 180}
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("event: progress"):
                    break  # the class pressed Stop
        await until(lambda: not url_live.app.state.live.running, "the run stopped")
        await until(lambda: not url_live.engine.heavy.running, "its place in the heavy lane given back")

    with running(live_training=True, models="tiny") as server, ThreadPoolExecutor(1) as thread:
        # A loop of its own on another thread: the browser tests' Playwright may hold this thread's.
        thread.submit(asyncio.run, asyncio.wait_for(scenario(server), LIMIT_S)).result()


def test_a_run_opens_no_file_and_writes_nothing(
    client: TestClient, make_image: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    upload = make_image(96, 96, seed=5)

    def one_run() -> None:
        response = client.post(LIVE, params={"seconds": 5}, content=upload, headers={"content-type": "image/png"})
        assert parse_events(response.text)[-1][0] == "result"

    one_run()  # lazy imports happen here
    with opened_files() as opened:
        one_run()
    assert data_files(opened) == []
    assert list(tmp_path.iterdir()) == []
