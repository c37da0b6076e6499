"""The world's vocabulary: part types shared across classes, owner codes and the visibility threshold."""

from __future__ import annotations

from models import world
from models.world import catalog


def test_each_part_type_is_shared_by_two_classes() -> None:
    for part in world.PARTS:
        owners = [c for c, parts in world.CLASS_PARTS.items() if part in parts]
        assert len(owners) >= 2, (part, owners)
    assert set(world.CLASS_PARTS) | {"scrambled"} == set(world.CLASSES)


def test_owner_codes_are_distinct_and_name_every_part() -> None:
    owners = [world.part_owner(p) for p in world.PARTS]
    assert owners == list(range(2, 2 + len(world.PARTS)))
    assert len({world.BACKGROUND, world.BODY, world.OCCLUDER, *owners}) == len(owners) + 3
    assert max(owners) < world.OCCLUDER <= 255  # the owner map is uint8


def test_class_parts_name_only_known_parts_and_backgrounds_are_five() -> None:
    assert all(p in world.PARTS for parts in world.CLASS_PARTS.values() for p in parts)
    assert list(world.CLASS_PARTS) == world.CLASSES[:-1] and world.CLASSES[-1] == "scrambled"
    assert len(set(catalog.BACKGROUNDS)) == 5
    assert world.VISIBLE_PIXELS == catalog.VISIBLE_PIXELS > 0
