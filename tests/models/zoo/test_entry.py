"""A model entry's discovered fields: the served default view's budget and the drawable first layer."""

from __future__ import annotations

from torch import nn

from models.discovery import Discovery, FoundLayer
from models.zoo.entry import first_rgb_conv, served_view


def layer(name: str, stage: str, channels: int, side: int) -> FoundLayer:
    return FoundLayer(name, name, "ReLU", stage, (channels, side, side), 3, 1, 0.0)


def test_the_view_loses_its_largest_map_whose_stage_stays_shown() -> None:
    layers = (layer("a", "edges", 64, 112), layer("b", "edges", 64, 56), layer("c", "textures", 128, 28),
              layer("d", "parts", 256, 14), layer("e", "parts", 256, 14), layer("f", "objects", 512, 7))
    found = Discovery(224, layers, tuple(x.name for x in layers))
    assert served_view(found) == ("b", "c", "d", "e", "f")  # 1.28 million values -> 0.48 million
    assert served_view(found, budget=10**7) == found.default_layers  # within the budget: as discovered
    # Never fewer than five, never a stage without its band.
    assert served_view(found, budget=1) == ("b", "c", "d", "e", "f")
    assert served_view(found, budget=1, least=2) == ("b", "c", "e", "f")


def test_filters_are_drawn_only_from_a_first_convolution_on_rgb() -> None:
    assert first_rgb_conv(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())) == "0"
    assert first_rgb_conv(nn.Sequential(nn.Identity(), nn.Sequential(nn.Conv2d(3, 4, 3)))) == "1.0"
    assert first_rgb_conv(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3))) is None
    assert first_rgb_conv(nn.Sequential(nn.Flatten(), nn.Linear(12, 3))) is None
