"""Whether a weights file is the one a model's title and card describe: its sha256, checked.

torchvision names each published file after the first hex digits of its sha256
(``alexnet-owt-7be5be79.pth``); the tiny model records its file's whole sha256 in tiny.json.
:func:`check_published` and :func:`check_recorded` compare a file on disk with those, and
:class:`WeightsCheck` is what the API and the command line show.

A file is hashed once and its digest remembered by (path, size, mtime, inode), so repeated
loads do not read it again. The memory is per process: hashing AlexNet's 244 MB file takes
about 0.15 s, no more than loading it, and a digest kept in a file beside the weights could
be rewritten by whoever rewrote the weights.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# torch.hub's rule for the hash prefix in a published file name ("-7be5be79.").
HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")
# A file changed twice within one tick of the file system's clock keeps its size and mtime; a
# digest is remembered only once the file's mtime is this far in the past (git's "racy" rule).
SETTLED_S = 2.0
MAX_REMEMBERED = 64
_CHUNK = 1 << 20

_digests: dict[tuple[str, int, int, int], str] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class WeightsCheck:
    """A weights file's name, its sha256, and whether that is the expected digest."""

    file: str
    sha256: str
    verified: bool

    def to_dict(self) -> dict[str, Any]:
        """The ``weights`` object of a model's summary."""
        return {"file": self.file, "sha256": self.sha256, "verified": self.verified}


def sha256_of(path: Path) -> str:
    """The file's sha256, read in chunks (never the whole file in memory)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_sha256(path: Path | str) -> str:
    """The file's sha256, hashed again only when its size, mtime or inode changed."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _lock:
        known = _digests.get(key)
    if known is not None:
        return known
    digest = sha256_of(path)
    if time.time() - stat.st_mtime >= SETTLED_S:
        with _lock:
            if len(_digests) >= MAX_REMEMBERED:
                _digests.pop(next(iter(_digests)))
            _digests[key] = digest
    return digest


def forget() -> None:
    """Drop every remembered digest."""
    with _lock:
        _digests.clear()


def name_prefix(file_name: str) -> str | None:
    """The hash prefix a published file's name carries, or None when it carries none."""
    found = HASH_IN_NAME.search(file_name)
    return found.group(1) if found else None


def check_published(path: Path, url: str) -> WeightsCheck:
    """``path`` against the file published at ``url``: the same name, and the sha256 prefix
    that name carries. Any other name is unverified, whatever its digest: only the published
    name says which digest to expect."""
    digest = file_sha256(path)
    expected_name = os.path.basename(url)
    prefix = name_prefix(expected_name)
    verified = path.name == expected_name and prefix is not None and digest.startswith(prefix)
    return WeightsCheck(path.name, digest, verified)


def check_recorded(path: Path, sha256: str | None) -> WeightsCheck:
    """``path`` against the whole sha256 its metadata records."""
    digest = file_sha256(path)
    return WeightsCheck(path.name, digest, sha256 is not None and digest == sha256.lower())
