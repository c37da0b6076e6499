"""Fixtures shared by every test package: pictures made in memory, AlexNet test weights."""

from __future__ import annotations

import io
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.models import alexnet

_OPENED: list[str] = []
_RECORDING = threading.Event()


def _audit(event: str, args: tuple[object, ...]) -> None:
    # Audit hooks cannot be removed, so this one only records inside ``opened_files``.
    if event == "open" and _RECORDING.is_set():
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """The paths of every file opened (for reading or writing) inside the block, in any thread."""
    found: list[str] = []
    _OPENED.clear()
    _RECORDING.set()
    try:
        yield found
    finally:
        _RECORDING.clear()
        found.extend(_OPENED)


def data_files(paths: list[str]) -> list[str]:
    """``paths`` less the code a lazy import may open."""
    return [p for p in paths if not p.endswith((".py", ".pyc", ".so"))]


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (for servers a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def publish(monkeypatch: pytest.MonkeyPatch, name: str, url: str) -> None:
    """Make ``url`` the published address of torchvision's ``name`` weights for this test: the
    fetch command downloads from it, and its file name (with the sha256 prefix) is the one
    looked for in the cache and checked against."""
    from models.zoo import torchvision_zoo

    real = torchvision_zoo.weights_url
    monkeypatch.setattr(torchvision_zoo, "weights_url", lambda asked: url if asked == name else real(asked))


def scene(width: int = 320, height: int = 240, seed: int = 0) -> Image.Image:
    """A deterministic picture with edges, gradients and colour, so activations are not flat."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, height // 8 + 1, width // 8 + 1, generator=g)
    big = torch.nn.functional.interpolate(base[None], size=(height, width), mode="bilinear")[0]
    ys = torch.linspace(0, 1, height)[:, None].expand(height, width)
    big[0] = 0.5 * big[0] + 0.5 * ys
    big[1, height // 3 : height // 2, :] = 1.0  # a horizontal bar: strong edges
    pixels = (big.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels, "RGB")


@pytest.fixture(scope="session")
def make_image() -> Callable[..., bytes]:
    def make(width: int = 320, height: int = 240, fmt: str = "PNG", seed: int = 0) -> bytes:
        return encode(scene(width, height, seed), fmt)

    return make


@pytest.fixture(scope="session")
def alexnet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random AlexNet state dict written by the test: real loading code, no download."""
    torch.manual_seed(1234)
    path = tmp_path_factory.mktemp("weights") / "alexnet-random.pth"
    torch.save(alexnet(weights=None).state_dict(), path)
    return path
