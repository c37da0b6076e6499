"""Rasterizing: masks are exactly the visible drawn pixels, occluders hide parts, placement scales strokes."""

from __future__ import annotations

import numpy as np
import pytest

from models import world
from models.world.catalog import BODY
from models.world.prims import Prim
from models.world.raster import paint, place


def _independent_masks(s: world.Sample, size: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Each stroke in its own layer; a pixel belongs to the last stroke that covers it."""
    layers = [world.rasterize(p, size) for p in s.prims]
    visible: dict[int, np.ndarray] = {}
    covered_later = np.zeros((size, size), dtype=bool)
    for prim, layer in zip(reversed(s.prims), reversed(layers), strict=True):
        own = layer & ~covered_later
        visible[prim.owner] = visible.get(prim.owner, np.zeros_like(own)) | own
        covered_later |= layer
    return visible, covered_later


@pytest.mark.parametrize("index", [0, 5, 9, 14, 21, 30, 37, 43, 54, 65])
def test_masks_are_exactly_the_visible_drawn_pixels(index: int) -> None:
    size = 96
    s = world.generate(5, index, size, post=False)
    visible, _ = _independent_masks(s, size)
    empty = np.zeros((size, size), dtype=bool)
    for part in world.PARTS:
        assert np.array_equal(s.part_masks[part], visible.get(world.part_owner(part), empty)), part
    expected_object = visible.get(world.BODY, empty).copy()
    for part in world.PARTS:
        expected_object |= visible.get(world.part_owner(part), empty)
    assert np.array_equal(s.object_mask, expected_object)
    # And the image shows each untextured part stroke's colour wherever its mask says so.
    assert s.clean_image is not None
    layers = [world.rasterize(p, size) for p in s.prims]
    for i, (prim, layer) in enumerate(zip(s.prims, layers, strict=True)):
        if prim.texture is None and prim.owner != world.BACKGROUND:
            later = np.zeros_like(layer)
            for other in layers[i + 1:]:
                later |= other
            own = layer & ~later
            assert (s.clean_image[own] == np.array(prim.color, dtype=np.uint8)).all()


def test_occluder_hides_parts() -> None:
    # Find an occluded image and check no mask claims a pixel the occluder covers.
    for index in range(200):
        s = world.generate(2, index, 96, post=False)
        occ = [p for p in s.prims if p.owner == world.OCCLUDER]
        if occ:
            layer = world.rasterize(occ[-1], 96)
            if (layer & world.generate(2, index, 96).object_mask).any():
                pytest.fail("object mask covers occluder pixels")
            assert not any((s.part_masks[p] & layer).any() for p in world.PARTS)
            return
    pytest.fail("no occluder in 200 images")


def test_rasterize_rejects_an_unknown_shape() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        world.rasterize(Prim("star", [(4.0, 4.0)], (1, 2, 3), BODY), 8)


def test_rasterize_draws_each_shape_where_it_is() -> None:
    size = 32
    disc = world.rasterize(Prim("disc", [(16.0, 16.0)], (0, 0, 0), BODY, radius=6.0), size)
    ring = world.rasterize(Prim("ring", [(16.0, 16.0)], (0, 0, 0), BODY, radius=10.0, width=2.0), size)
    line = world.rasterize(Prim("line", [(2.0, 5.0), (30.0, 5.0)], (0, 0, 0), BODY, width=1.0), size)
    box = world.rasterize(Prim("polygon", [(2.0, 2.0), (9.0, 2.0), (9.0, 9.0), (2.0, 9.0)], (0, 0, 0), BODY), size)
    assert disc[16, 16] and not disc[16, 24] and not disc[0, 0]
    assert ring[16, 26] and not ring[16, 16]
    assert line[5, 2:31].all() and line.sum() == 29
    assert box[2:10, 2:10].all() and box.sum() == 64


def test_place_maps_the_canonical_frame_to_pixels() -> None:
    prims = [Prim("disc", [(1.0, 0.0)], (0, 0, 0), BODY, radius=0.5, width=0.1)]
    place(prims, 10.0, 0.0, 20.0, 30.0)
    assert prims[0].points == [(30.0, 30.0)] and prims[0].radius == 5.0 and prims[0].width == 1.0


def test_paint_writes_colour_texture_and_owner() -> None:
    size = 16
    image = np.zeros((size, size, 3), dtype=np.uint8)
    owners = np.zeros((size, size), dtype=np.uint8)
    grid = np.mgrid[0:size, 0:size].astype(np.float32)
    square = [(0.0, 0.0), (15.0, 0.0), (15.0, 15.0), (0.0, 15.0)]
    striped = Prim("polygon", square, (200, 0, 0), 7, texture="stripes", color2=(0, 0, 200), period=4.0)
    paint(image, owners, striped, (grid[0], grid[1]))
    assert (owners == 7).all()
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert colours == {(200, 0, 0), (0, 0, 200)}
