"""Download a torchvision model's ImageNet weights into torchvision's cache, only when a person asks.

torch.hub shows a progress bar and checks the file's sha256 prefix (torchvision names the
file after it), so a broken or tampered download is refused rather than served. Every way
the download can fail is a :class:`FetchError` that says what went wrong and what to do.
"""

from __future__ import annotations

import socket
import urllib.error
from pathlib import Path

import torch

from models.zoo import torchvision_zoo as zoo
from models.zoo import verify

# Seconds the download may wait for the server to answer or send the next chunk: a network
# that drops packets silently would otherwise keep the command waiting for ever.
STALL_TIMEOUT_S = 30.0
WRITABLE = "set TORCH_HOME to a folder you can write to"
RETRY = "check the connection (and any proxy settings) and run `{command}` again"


class FetchError(RuntimeError):
    """An expected failure of the download; the message reads "<what went wrong>; <what to do>"."""

    def __init__(self, what: str, todo: str) -> None:
        super().__init__(f"{what}; {todo}")


def fetch_weights(name: str) -> Path:
    """``name``'s verified weights file in torchvision's cache, downloaded first if it is not there."""
    target, url = zoo.weights_file(name), zoo.weights_url(name)
    retry = RETRY.format(command=zoo.fetch_command(name))
    if target.exists():
        _check_cached(target, url, name)
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {target.parent} ({exc.strerror})", WRITABLE) from exc
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(STALL_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=verify.name_prefix(target.name), progress=True)
    except urllib.error.URLError as exc:
        raise FetchError(f"could not download {url} ({exc.reason})", retry) from exc
    except TimeoutError as exc:
        raise FetchError(f"the download of {url} stalled for {STALL_TIMEOUT_S:.0f} s", retry) from exc
    except OSError as exc:
        raise FetchError(f"could not download {url} ({exc.strerror or exc})", retry) from exc
    except RuntimeError as exc:
        if "hash" not in str(exc):
            raise
        raise FetchError(f"the file downloaded from {url} does not have the published sha256", retry) from exc
    finally:
        socket.setdefaulttimeout(previous)
    return target


def _check_cached(target: Path, url: str, name: str) -> None:
    check = verify.check_published(target, url)
    if not check.verified:
        raise FetchError(
            f"{target} is there but is not the published file (its sha256 starts with {check.sha256[:8]})",
            f"delete it and run `{zoo.fetch_command(name)}` again",
        )
