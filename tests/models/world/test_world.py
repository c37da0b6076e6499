"""The world package's facade: every name the repo reads as ``world.X`` is there."""

from __future__ import annotations

from models import world

# Every ``world.X`` the app, models, scripts, tests and benchmarks use.
USED = ["BACKGROUND", "BODY", "CLASSES", "CLASS_PARTS", "DROP_STREAM", "OCCLUDER", "PARTS", "Sample",
        "VISIBLE_PIXELS", "generate", "generate_batch", "images_per_second", "part_owner", "rasterize"]


def test_facade_exports_every_name_used_elsewhere() -> None:
    missing = [n for n in USED if not hasattr(world, n)]
    assert not missing, missing
    assert set(USED) <= set(world.__all__)


def test_throughput_is_measured() -> None:
    assert world.images_per_second(size=32, count=4) > 0
