"""The naive peer server and its rows: the peer answers every channel of the five conv layers,
and the group gives every row with finite ratios (counts and shapes, never times)."""

from __future__ import annotations

import base64
import importlib
import io
import json
import math
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bench import naive
from bench.__main__ import GROUPS
from bench.common import Config, photo_jpeg

# AlexNet's conv layers after their ReLUs, for a 224x224 crop: (channels, side).
SHAPES = {"conv1": (64, 55), "conv2": (192, 27), "conv3": (384, 13), "conv4": (256, 13), "conv5": (256, 13)}


def test_the_group_is_selectable() -> None:
    assert GROUPS["naive"] is naive.run


def test_the_naive_server_answers_one_png_per_channel(
    alexnet_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAIVE_ALEXNET_WEIGHTS", str(alexnet_weights))
    monkeypatch.delitem(sys.modules, "bench.naive_server", raising=False)
    server = importlib.import_module("bench.naive_server")
    with TestClient(server.app) as client:
        response = client.post("/activations", files={"image": ("photo.jpg", photo_jpeg(), "image/jpeg")})
    assert response.status_code == 200
    body = response.json()
    assert len(body["predictions"]) == 5
    assert {p["index"] for p in body["predictions"]} <= set(range(1000))
    assert [layer["name"] for layer in body["layers"]] == list(SHAPES)
    for layer in body["layers"]:
        channels, side = SHAPES[layer["name"]]
        assert layer["shape"] == [channels, side, side]
        assert len(layer["channels"]) == channels
        picture = Image.open(io.BytesIO(base64.b64decode(layer["channels"][0])))
        assert picture.format == "PNG" and picture.mode == "L" and picture.size == (side, side)


def test_the_forward_step_is_read_from_the_answers_tail() -> None:
    body = json.dumps({"layers": [{"x": "}{"}], "timings_ms": {"decode": 1.5, "forward": 14.25, "total": 30.0}})
    assert naive.forward_ms(body.encode()) == 14.25
    assert naive.forward_ms(b'{"layers": []}') is None


def test_without_alexnet_the_group_says_skipped() -> None:
    (row,) = naive.run(Config(reps=2, quick=True, models=("tiny",)))
    assert row.status == "skipped" and row.group == "naive"


@pytest.mark.slow
def test_rows_against_both_servers() -> None:
    rows = naive.run(Config(reps=2, quick=True, models=("alexnet",), extra={"naive_seconds": 1.0}))
    names = [(row.group, row.name) for row in rows]
    assert names[:5] == [
        ("naive", naive.AS_BUILT),
        ("naive", naive.SERVED),
        ("naive", f"{naive.OURS}: end to end, 1 client"),
        ("naive", f"{naive.PEER}: end to end, 1 client"),
        ("naive", f"{naive.OURS}: forward step in timings_ms, 1 client"),
    ]
    throughput = {name for group, name in names if group == "throughput"}
    for server in (naive.OURS, naive.PEER):
        assert {f"{server}: 1 client", f"{server}: 8 clients"} <= throughput
    assert f"{naive.OURS} / {naive.PEER}, 8 clients" in throughput
    assert rows[0].ratio == 1.0
    for row in rows:
        assert row.model == "alexnet" and row.status in {"pass", "miss", "info"}, row
        measure = row.ms if row.ms is not None else row.value
        assert measure is not None and math.isfinite(measure) and measure > 0, row
        if row.ratio is not None:
            assert math.isfinite(row.ratio) and row.ratio > 0, row
    by_name = {row.name: row for row in rows}
    for server in (naive.OURS, naive.PEER):
        assert "0 refused" in by_name[f"{server}: 8 clients"].note  # every client was served
