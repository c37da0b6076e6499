"""Weights are called what they are: each file's sha256 against the expected one, computed once."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torchvision.models import AlexNet_Weights, alexnet

from models.zoo import tinyweights, verify
from models.zoo.registry import load_alexnet, tiny_entry
from tests.conftest import publish

TORCHVISION_NAME = "alexnet-owt-7be5be79.pth"
AN_HOUR_AGO = time.time() - 3600


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    verify.forget()
    yield
    verify.forget()


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the verifier actually reads, in order."""
    calls: list[Path] = []
    real = verify.sha256_of

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(verify, "sha256_of", counting)
    return calls


@pytest.fixture
def tampered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Random AlexNet weights under torchvision's real file name, in a private TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / TORCHVISION_NAME
    path.parent.mkdir(parents=True)
    torch.manual_seed(7)
    torch.save(alexnet(weights=None).state_dict(), path)
    return path


def test_the_hash_is_hashlibs(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # more than one read chunk, not a multiple of it
    assert verify.sha256_of(path) == digest(path)
    assert verify.file_sha256(path) == digest(path)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert verify.file_sha256(empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_a_file_is_hashed_once_while_its_size_and_mtime_stay(tmp_path: Path, hash_calls: list[Path]) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    first = digest(path)
    assert [verify.file_sha256(path) for _ in range(5)] == [first] * 5
    assert len(hash_calls) == 1
    # The same size, another mtime: read again, and the new digest is the file's.
    path.write_bytes(b"b" * 1000)
    os.utime(path, (AN_HOUR_AGO + 1, AN_HOUR_AGO + 1))
    assert verify.file_sha256(path) == digest(path) != first
    assert len(hash_calls) == 2
    # Another size under the old mtime: read again.
    path.write_bytes(b"b" * 1001)
    os.utime(path, (AN_HOUR_AGO + 1, AN_HOUR_AGO + 1))
    assert verify.file_sha256(path) == digest(path)
    assert len(hash_calls) == 3


def test_a_file_written_just_now_is_not_remembered_yet(tmp_path: Path, hash_calls: list[Path]) -> None:
    # Two writes within one tick of the clock leave the same size and mtime: a file this
    # fresh could still change unseen, so its digest is not kept.
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"x" * 100)
    verify.file_sha256(path)
    verify.file_sha256(path)
    assert len(hash_calls) == 2


def test_repeated_loads_do_not_rehash(tampered: Path, hash_calls: list[Path]) -> None:
    os.utime(tampered, (AN_HOUR_AGO, AN_HOUR_AGO))
    for _ in range(3):
        assert load_alexnet(None).weights is not None
    assert hash_calls == [tampered]


def test_only_the_published_name_with_its_digest_is_verified(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(b"some weights")
    real = digest(path)
    named = tmp_path / f"net-{real[:8]}.pth"
    shutil.copy(path, named)
    check = verify.check_published(named, f"https://example.invalid/models/{named.name}")
    assert check == verify.WeightsCheck(named.name, real, True)
    # The right name and the wrong bytes; the right bytes and another name; a name without a hash.
    assert not verify.check_published(named, "https://example.invalid/models/net-00000000.pth").verified
    assert not verify.check_published(path, f"https://example.invalid/models/{named.name}").verified
    assert not verify.check_published(path, "https://example.invalid/models/w.pth").verified
    assert verify.check_recorded(path, real).verified and verify.check_recorded(path, real.upper()).verified
    assert not verify.check_recorded(path, real[:-1] + "0" if real[-1] != "0" else real[:-1] + "1").verified
    assert not verify.check_recorded(path, None).verified


def test_random_weights_under_torchvisions_name_are_served_as_unverified(tampered: Path) -> None:
    entry = load_alexnet(None)
    assert entry.available and entry.weights_source == str(tampered)
    assert entry.summary()["weights"] == {"file": TORCHVISION_NAME, "sha256": digest(tampered), "verified": False}
    assert "unverified weights" in entry.title and "unverified weights" in entry.trained_on
    for text in (entry.title, entry.description, entry.trained_on):
        assert "imagenet" not in text.lower()
    # Nothing measured on torchvision's file is claimed for this one.
    assert entry.metrics == {} and entry.accuracy_percent is None
    # Still the network it holds: the served weights are the file's.
    saved = torch.load(tampered, weights_only=True)
    assert entry.network is not None
    assert torch.equal(entry.network.state_dict()["features.0.weight"], saved["features.0.weight"])


def test_an_explicit_file_under_another_name_is_unverified(alexnet_weights: Path) -> None:
    entry = load_alexnet(alexnet_weights)
    assert entry.available and entry.weights is not None
    assert entry.weights.file == alexnet_weights.name and entry.weights.sha256 == digest(alexnet_weights)
    assert not entry.weights.verified and "ImageNet" not in entry.title


def test_a_file_with_the_published_name_and_digest_is_served_as_imagenet(
    tampered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torchvision's real file is not on this machine: publish the test's own file instead.
    published = tampered.with_name(f"alexnet-owt-{digest(tampered)[:8]}.pth")
    tampered.rename(published)
    publish(monkeypatch, "alexnet", f"https://example.invalid/models/{published.name}")
    entry = load_alexnet(None)
    assert entry.weights == verify.WeightsCheck(published.name, digest(published), True)
    assert entry.title == "AlexNet (ImageNet)" and entry.trained_on.startswith("ImageNet-1k")
    top1 = AlexNet_Weights.IMAGENET1K_V1.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert entry.metrics == {"imagenet_top1": top1} and entry.accuracy_percent == top1


def test_the_shipped_tiny_weights_are_verified_against_tiny_json() -> None:
    recorded = tinyweights.read_meta()["sha256"]
    entry = tiny_entry()
    assert recorded == digest(tinyweights.WEIGHTS_DIR / tinyweights.WEIGHTS_FILE)
    assert entry.summary()["weights"] == {"file": tinyweights.WEIGHTS_FILE, "sha256": recorded, "verified": True}
    assert entry.title == "MiniAlexNet (parts world)" and entry.metrics


def test_altered_tiny_weights_are_served_as_unverified(tmp_path: Path) -> None:
    for name in (tinyweights.META_FILE, tinyweights.WEIGHTS_FILE):
        shutil.copy(tinyweights.WEIGHTS_DIR / name, tmp_path / name)
    path = tmp_path / tinyweights.WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of the last weight
    path.write_bytes(bytes(data))
    entry = tiny_entry(tmp_path)
    assert entry.available and entry.weights is not None
    assert entry.weights.sha256 == digest(path) != tinyweights.read_meta(tmp_path)["sha256"]
    assert not entry.weights.verified
    assert "unverified weights" in entry.title and "unverified weights" in entry.trained_on
    assert entry.metrics == {} and entry.accuracy_percent is None
    assert entry.checkpoints == () and entry.dissection_file is None and entry.taught_parts is None
    # The measuring jobs still refuse them.
    with pytest.raises(tinyweights.WeightsError, match="sha256"):
        tinyweights.load_tiny(tmp_path)


def test_no_file_no_weights_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert load_alexnet(None).summary()["weights"] is None
    assert tiny_entry(tmp_path).summary()["weights"] is None  # untrained: random initial weights
