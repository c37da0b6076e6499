"""The parts world's vocabulary: its classes, part types, backgrounds and owner codes.

Everything that counts parts or classes outside the generator (training targets,
dissection, reliance, the model card) reads these names, so they live apart from the
drawing code.
"""

from __future__ import annotations

CLASSES: list[str] = [
    "car", "bus", "bicycle", "house", "tree", "flower", "face", "cat", "fish", "boat",
    "scrambled",
]
PARTS: list[str] = [
    "wheel", "window", "door", "roof", "eye", "mouth", "ear", "nose", "petal", "leaf",
    "trunk", "fin",
]
# Which part types each real class draws (documentation and a test check it matches).
CLASS_PARTS: dict[str, tuple[str, ...]] = {
    "car": ("wheel", "window", "door", "roof"),
    "bus": ("wheel", "window", "door"),
    "bicycle": ("wheel",),
    "house": ("window", "door", "roof"),
    "tree": ("trunk", "leaf", "petal"),
    "flower": ("trunk", "leaf", "petal"),
    "face": ("eye", "mouth", "ear", "nose"),
    "cat": ("eye", "mouth", "ear", "nose"),
    "fish": ("eye", "mouth", "fin"),
    "boat": ("window", "fin"),
}
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "noise", "stripes", "clutter")

# Owner codes in the owner map: 0 background (clutter included), 1 object body,
# 2 + k part PARTS[k], OCCLUDER for occluders drawn over the object.
BACKGROUND, BODY, OCCLUDER = 0, 1, 255

# A part is visible in a picture when at least this many of its mask pixels show: the
# training targets ("which parts are present") and the reliance job both count parts so.
VISIBLE_PIXELS = 8


def part_owner(name: str) -> int:
    """The owner code that part type ``name`` paints into the owner map."""
    return 2 + PARTS.index(name)
