"""A head as .safetensors: round trip, metadata, and every way a file can be refused."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load, save

from models.teach.export import FORMAT, BadHead, head_bytes, read_head, read_metadata
from models.teach.head import Head

UNITS = 6


def expected(base: str, layer: str) -> int | None:
    return UNITS if (base, layer) == ("tiny", "features.11") else None


def head() -> Head:
    rng = np.random.default_rng(0)
    return Head(
        ("mug", "pen", "hand"), "tiny", "features.11", rng.random(UNITS, np.float32),
        rng.random(UNITS, np.float32) + 0.5, rng.normal(size=(3, UNITS)).astype(np.float32),
        rng.normal(size=3).astype(np.float32),
    )


def test_a_head_round_trips_and_says_what_it_is() -> None:
    original = head()
    data = head_bytes(original)
    assert len(data) < 4096
    back = read_head(data, expected)
    assert (back.classes, back.base, back.layer) == (original.classes, "tiny", "features.11")
    for name in ("weight", "bias", "mean", "std"):
        np.testing.assert_array_equal(getattr(back, name), getattr(original, name))
    probe = np.ones((2, UNITS), np.float32)
    np.testing.assert_array_equal(back.probabilities(probe), original.probabilities(probe))
    metadata = read_metadata(data)
    assert metadata["format"] == FORMAT and json.loads(metadata["classes"]) == ["mug", "pen", "hand"]


def rewritten(tensors: dict[str, np.ndarray] | None = None, **metadata: str) -> bytes:
    data = head_bytes(head())
    base = {**read_metadata(data), **metadata}
    return save({**load(data), **(tensors or {})}, metadata=base)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}",
        struct.pack("<Q", 1 << 40) + b"{}",
        save({"weight": np.zeros((3, UNITS), np.float32)}),  # no metadata at all
    ],
)
def test_what_is_not_a_head_file_is_refused(data: bytes) -> None:
    with pytest.raises(BadHead):
        read_head(data, expected)


@pytest.mark.parametrize(
    ("metadata", "tensors"),
    [
        ({"format": "something-else"}, None),
        ({"classes": "not json"}, None),
        ({"classes": json.dumps({"a": 1})}, None),
        ({"classes": json.dumps(["mug", "MUG", "pen"])}, None),
        ({"classes": json.dumps(["mug", "pen"])}, None),  # 2 names, 3 rows
        ({"base": "resnet"}, None),
        ({"layer": "features.9"}, None),
        ({}, {"weight": np.zeros((3, UNITS + 1), np.float32)}),
        ({}, {"std": np.zeros(UNITS, np.float32)}),
        ({}, {"bias": np.array([0, np.nan, 0], np.float32)}),
        ({}, {"mean": np.zeros(UNITS, np.float64)}),
        ({}, {"extra": np.zeros(1, np.float32)}),
    ],
)
def test_a_head_that_does_not_fit_is_refused(metadata: dict[str, str], tensors: dict[str, np.ndarray] | None) -> None:
    with pytest.raises(BadHead):
        read_head(rewritten(tensors, **metadata), expected)
