"""A model entry's discovered fields: the served default view's budget and the drawable first layer."""

from __future__ import annotations

from torch import nn

from models.discovery import Discovery, FoundLayer
from models.zoo.entry import first_rgb_conv, served_view, shared_maps


def layer(name: str, stage: str, channels: int, side: int) -> FoundLayer:
    return FoundLayer(name, name, "ReLU", stage, (channels, side, side), 3, 1, 0.0)


LAYERS = (layer("a", "edges", 64, 112), layer("b", "edges", 64, 56), layer("c", "textures", 128, 28),
          layer("d", "parts", 256, 14), layer("e", "parts", 256, 14), layer("f", "objects", 512, 7))
FOUND = Discovery(224, LAYERS, tuple(x.name for x in LAYERS))


def test_a_view_within_the_budget_is_served_whole() -> None:
    view = served_view(FOUND, budget=10**7)
    assert view.layers == FOUND.default_layers and view.maps == {}
    assert view.values(FOUND) == 64 * 112**2 + 64 * 56**2 + 128 * 28**2 + 2 * 256 * 14**2 + 512 * 7**2


def test_the_widest_layers_carry_their_most_active_maps_within_the_budget() -> None:
    # 1.23 million values for a budget of half a million. Smallest first, each within an even
    # share of what is left keeps every map: f (25,088), d and e (50,176), c (100,352); then b's
    # share is (500,000 - 225,792) / 2 = 137,104 values, 43 of its 3,136-value maps, and a gets
    # the remaining 140,256: 11 of its 12,544-value maps.
    view = served_view(FOUND)
    assert view.layers == FOUND.default_layers
    assert view.maps == {"b": 43, "a": 11}
    assert view.values(FOUND) == 225_792 + 43 * 56**2 + 11 * 112**2 <= 500_000


def test_a_trimmed_layer_keeps_the_maps_drawn_large_and_a_view_over_budget_loses_a_shared_stage() -> None:
    assert shared_maps(FOUND, ["a"], budget=1) == {"a": 8}
    assert shared_maps(FOUND, ["f"], budget=10**6) == {}
    # Never fewer than five layers, never a stage without its band: a goes (the largest whose
    # stage b still shows), then the minimum of eight maps a layer cannot go under.
    view = served_view(FOUND, budget=1)
    assert view.layers == ("b", "c", "d", "e", "f")
    assert view.maps == {name: 8 for name in view.layers}
    assert served_view(FOUND, budget=1, least=2).layers == ("b", "c", "e", "f")


def test_filters_are_drawn_only_from_a_first_convolution_on_rgb() -> None:
    assert first_rgb_conv(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())) == "0"
    assert first_rgb_conv(nn.Sequential(nn.Identity(), nn.Sequential(nn.Conv2d(3, 4, 3)))) == "1.0"
    assert first_rgb_conv(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3))) is None
    assert first_rgb_conv(nn.Sequential(nn.Flatten(), nn.Linear(12, 3))) is None
