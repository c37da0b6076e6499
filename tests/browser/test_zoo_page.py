"""The page for any network: a torchvision model and your own, every band drawn, no console errors.

The server holds tiny, ResNet-18 (random weights under torchvision's file name in a
temporary TORCH_HOME), VGG-16 without weights, and a network of the test's own from a TOML
file. Every page's guard fails the test on a console error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import get_model

from app.settings import Settings
from models.zoo import torchvision_zoo as zoo
from tests.browser.conftest import screenshot, start_server, stop_server
from tests.browser.test_page import CANVAS_STATS, PHOTO, STAGES, upload, visit, wait_until
from tests.models.zoo.test_custom import BUILDER

pytestmark = pytest.mark.browser
CLOSEUP_OPAQUE = """() => {
  const c = document.querySelector('#closeup-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let opaque = 0;
  for (let i = 3; i < d.length; i += 4) opaque += d[i] === 255;
  return [opaque, c.width * c.height];
}"""
CONFIG = '''
[models.mine]
title = "My own network"
builder = "{module}:build"
weights = "mine.safetensors"
classes = ["teapot", "kite", "comet"]
input_size = 96
mean = [0.48, 0.46, 0.41]
std = [0.27, 0.26, 0.28]
'''


@pytest.fixture(scope="module")
def zoo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("torch-home")
    own = tmp_path_factory.mktemp("own")
    module = f"pagenets_{own.name.replace('-', '_')}"
    (own / f"{module}.py").write_text(BUILDER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.setattr(torch.hub, "_hub_dir", None)
        patch.syspath_prepend(str(own))
        torch.manual_seed(5)
        path = zoo.weights_file("resnet18")
        path.parent.mkdir(parents=True)
        torch.save(get_model("resnet18", weights=None).state_dict(), path)
        save_file(__import__(module).build().state_dict(), str(own / "mine.safetensors"))
        (own / "own.toml").write_text(CONFIG.format(module=module))
        settings = Settings(models="tiny,resnet18,vgg16", config=str(own / "own.toml"), rate_limit=0)
        server = start_server(settings)  # the models load here, while TORCH_HOME points at the test's cache
    yield server.url
    stop_server(server)


def assert_every_band_drawn(page: Any) -> None:
    for stage in STAGES:
        canvases = page.evaluate(CANVAS_STATS, stage)
        assert canvases, f"{stage}: no map"
        for c in canvases:
            assert c["opaque"] == c["pixels"] > 0, f"{stage}: a map is not fully drawn"
            assert c["role"] == "img" and "channel" in c["label"]
        assert any(c["distinct"] > 1 for c in canvases), f"{stage}: every map is flat"


@pytest.mark.parametrize(("model", "size"), [("resnet18", 224), ("mine", 96)])
def test_every_band_is_drawn(model: str, size: int, zoo_server: str, page_factory: Any) -> None:
    page, _guard = page_factory()
    visit(page, f"{zoo_server}/?model={model}")
    upload(page, PHOTO)
    assert page.locator("#seen").evaluate("img => img.naturalWidth") == size
    assert_every_band_drawn(page)
    assert page.locator("[data-testid=predictions] li.pred").count() == (5 if model == "resnet18" else 3)
    screenshot(page, f"laptop-{model}")
    # The technical levels name no conv1..conv5 for a network that has none.
    for level in ("student", "expert"):
        page.select_option("#level", level)
        words = page.locator("#journey").text_content() + " ".join(page.locator(".band-title").all_text_contents())
        assert "conv" not in words and "fc6" not in words, (level, words)
    assert page.locator('.band[data-stage="objects"] .band-title').text_content() == (
        "Objects: the last fifth of the depth")


def test_the_picker_groups_the_models_and_names_the_fetch_command(zoo_server: str, page_factory: Any) -> None:
    page, _guard = page_factory()
    visit(page, zoo_server)
    groups = page.evaluate("[...document.querySelectorAll('#model optgroup')].map((g) => "
                           "[g.label, [...g.querySelectorAll('option')].map((o) => o.value)])")
    assert groups == [["Embedded", ["tiny"]], ["ImageNet (torchvision)", ["resnet18", "vgg16"]],
                      ["Your own models", ["mine"]]]
    page.select_option("#model", "vgg16")
    page.wait_for_selector("#model-note code")
    assert page.locator("#model-note code").text_content() == "layerscope fetch-weights vgg16"


def test_an_unfamiliar_picture_is_one_click_from_an_imagenet_model(zoo_server: str, page_factory: Any) -> None:
    page, _guard = page_factory()
    visit(page, f"{zoo_server}/?model=tiny")
    upload(page, PHOTO)
    assert page.locator("#ood").is_visible()  # the shipped tiny calls a photo unfamiliar
    button = page.locator("#ood .look-through")
    assert button.text_content() == "Look at it through ResNet18 (unverified weights)"
    button.click()
    wait_until(page, "document.querySelector('#seen').naturalWidth === 224")
    assert page.locator("#model").input_value() == "resnet18"
    page.wait_for_selector("[data-testid=predictions] li.pred", state="attached")
    assert page.locator("#ood").is_hidden()


def test_a_wide_layer_shows_its_strongest_maps_and_fetches_the_others_when_asked(
    zoo_server: str, page_factory: Any
) -> None:
    # ResNet-18's stem (64 maps of 112 x 112) is the widest layer of its default view, which
    # carries only its most active maps; which ones, the server says (atlas.channels).
    answer = httpx.post(f"{zoo_server}/api/v1/models/resnet18/activations",
                        files={"image": ("cat.jpg", PHOTO.read_bytes(), "image/jpeg")}, timeout=60).json()
    stem = next(layer for layer in answer["layers"] if layer["name"] == "relu")
    sent = stem["atlas"]["channels"]
    assert 8 <= len(sent) < 64
    left_out = next(c for c in range(64) if c not in sent)
    page, _guard = page_factory()
    visit(page, f"{zoo_server}/?model=resnet18")
    upload(page, PHOTO)
    block = page.locator('.layer[data-layer="relu"]')
    note = block.locator(".layer-trim").text_content()
    assert note.startswith(f"This wide layer came with its {len(sent)} most active of 64 maps")
    large = [int(c) for c in block.locator(".maps .map-btn").evaluate_all("bs => bs.map((b) => b.dataset.channel)")]
    assert large == sent[:8]  # the maps drawn large are the strongest, in the server's order
    with page.expect_request(lambda r: "layers=relu" in r.url and r.method == "POST"):
        block.locator(".show-all").click()
    wait_until(page, "document.querySelectorAll('.layer[data-layer=\"relu\"] .grid .map-btn').length === 64")
    assert block.locator(".layer-trim").count() == 0
    block.locator(f'.grid .map-btn[data-channel="{left_out}"]').click()
    assert page.locator("#closeup-title").text_content().endswith(f"channel {left_out}")
    assert page.evaluate(CLOSEUP_OPAQUE) == [112 * 112, 112 * 112]  # the fetched map, fully drawn
    screenshot(page, "laptop-resnet18-wide-layer")


def test_a_shared_link_to_a_map_the_default_answer_left_out_opens_it(zoo_server: str, page_factory: Any) -> None:
    answer = httpx.post(f"{zoo_server}/api/v1/models/resnet18/activations",
                        files={"image": ("cat.jpg", PHOTO.read_bytes(), "image/jpeg")}, timeout=60).json()
    sent = next(layer for layer in answer["layers"] if layer["name"] == "relu")["atlas"]["channels"]
    left_out = next(c for c in range(64) if c not in sent)
    page, _guard = page_factory()
    with page.expect_request(lambda r: "layers=relu" in r.url and r.method == "POST"):
        visit(page, f"{zoo_server}/?model=resnet18&layer=relu&channel={left_out}")
        upload(page, PHOTO)
    wait_until(page, "document.querySelector('#closeup').open")
    assert page.locator("#closeup-title").text_content().endswith(f"channel {left_out}")
    assert page.evaluate(CLOSEUP_OPAQUE) == [112 * 112, 112 * 112]
