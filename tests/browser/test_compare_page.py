"""Comparing two networks in the page: tiny and ResNet-18 side by side, stage by stage.

The server holds tiny, ResNet-18 and SqueezeNet 1.0 (random weights under torchvision's file
names in a temporary TORCH_HOME; both built on first use) and VGG-16 without weights.
ResNet-18's column is checked against a plain torchvision forward pass of the same weights on
the same picture; every page's guard fails the test on a console error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, get_model

from app.settings import Settings
from models.zoo import torchvision_zoo as zoo
from tests.browser.conftest import screenshot, start_server, stop_server
from tests.browser.test_a11y import assert_clean
from tests.browser.test_page import PHOTO, STAGES, query, upload, visit, wait_until

pytestmark = pytest.mark.browser
ROWS = ("input", *STAGES, "prediction")

# Per side of one compare row: every map canvas, fully drawn or not, and how many colours it has.
CELL_CANVASES = """([stage, side]) => [...document.querySelectorAll(
  `#compare-view .cmp-row[data-stage="${stage}"] .cmp-cell[data-side="${side}"] .maps canvas`)].map((c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let opaque = 0; const distinct = new Set();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 255) opaque++;
    distinct.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
  }
  return { opaque, pixels: d.length / 4, distinct: distinct.size, label: c.getAttribute('aria-label') || '' };
})"""


@pytest.fixture(scope="module")
def compare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    home = tmp_path_factory.mktemp("torch-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.setattr(torch.hub, "_hub_dir", None)
        torch.manual_seed(11)
        weights = get_model("resnet18", weights=None).state_dict()
        path = zoo.weights_file("resnet18")
        path.parent.mkdir(parents=True)
        torch.save(weights, path)
        torch.save(get_model("squeezenet1_0", weights=None).state_dict(), zoo.weights_file("squeezenet1_0"))
        server = start_server(Settings(models="tiny,resnet18,vgg16,squeezenet1_0", rate_limit=0))
    yield server.url, weights
    stop_server(server)


def reference_top(weights: dict[str, torch.Tensor]) -> list[tuple[str, float]]:
    """ResNet-18's top-5 labels and probabilities for the photo: torchvision's network, its own
    transforms, softmax."""
    network = get_model("resnet18", weights=None)
    network.load_state_dict(weights)
    network.eval()
    preset = ResNet18_Weights.IMAGENET1K_V1
    with torch.no_grad():
        logits = network(preset.transforms()(Image.open(PHOTO).convert("RGB")).unsqueeze(0))
    top = torch.softmax(logits, 1)[0].topk(5)
    return [(preset.meta["categories"][i], p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


def compare_drawn(page: Any) -> None:
    upload(page, PHOTO)
    wait_until(page, "performance.getEntriesByName('ls:compare-drawn').length > 0", 60)


def assert_side_by_side(page: Any, server: str) -> None:
    for stage in STAGES:
        for side in ("a", "b"):
            canvases = page.evaluate(CELL_CANVASES, [stage, side])
            assert canvases, f"{stage}, side {side}: no map"
            assert all(c["opaque"] == c["pixels"] > 0 and "channel" in c["label"] for c in canvases), (stage, side)
            assert any(c["distinct"] > 1 for c in canvases), f"{stage}, side {side}: every map is flat"
    inputs = page.locator('#compare-view .cmp-row[data-stage="input"] img')
    sizes = inputs.evaluate_all("imgs => imgs.map((i) => i.naturalWidth)")
    assert sizes == [128, 224]
    for side, n in (("a", 5), ("b", 5)):
        rows = page.locator(f'#compare-view .cmp-row[data-stage="prediction"] .cmp-cell[data-side="{side}"] li.pred')
        assert rows.count() == n
    # Each of ResNet-18's shown layers says its receptive field once, as the API reports it: in
    # the layer's detail where the level's detail names it (adult and up), else in a line of its own.
    listing = page.request.get(f"{server}/api/v1/models/resnet18").json()
    fields = [layer["receptive_field"] for layer in listing["layers"]]
    assert len(fields) >= 5
    side_b = '#compare-view .cmp-cell[data-side="b"]'
    details = page.locator(f"{side_b} .layer-detail").all_text_contents()
    for detail, rf in zip(details, fields, strict=True):
        assert f"sees {rf}×{rf} pixels" in detail or f"receptive field {rf} px" in detail, detail
    assert page.locator(f"{side_b} .cmp-rf").count() == 0
    level = page.locator("#level").input_value()
    page.select_option("#level", "teen")
    wait_until(page, f"document.querySelectorAll('{side_b} .cmp-rf').length > 0")
    expected = [f"Each map pixel sees {layer['receptive_field']}×{layer['receptive_field']} px of its input "
                f"(stride {layer['stride']})" for layer in listing["layers"]]
    assert page.locator(f"{side_b} .cmp-rf").all_text_contents() == expected
    page.select_option("#level", level)


def test_tiny_and_resnet18_side_by_side(compare_server: tuple[str, dict[str, torch.Tensor]], page_factory: Any) -> None:
    server, weights = compare_server
    page, _guard = page_factory()
    visit(page, f"{server}/?model=tiny")
    assert page.locator("#compare-view").is_hidden()
    page.select_option("[data-testid=compare]", "resnet18")
    assert query(page)["model"] == "tiny" and query(page)["compare"] == "resnet18"
    assert page.locator("#flow").is_hidden() and page.locator("#compare-view").is_visible()
    compare_drawn(page)
    assert_side_by_side(page, server)
    predictions = page.locator('.cmp-row[data-stage="prediction"] .cmp-cell[data-side="b"] li.pred')
    reference = reference_top(weights)
    assert predictions.locator(".pred-label").all_text_contents() == [label for label, _ in reference]
    # Each bar is as long as the probability: this untrained network's best guess is a sliver.
    drawn = predictions.evaluate_all(
        "rows => rows.map(r => r.querySelector('.bar').getBoundingClientRect().width"
        " / r.querySelector('.track').getBoundingClientRect().width)"
    )
    for share, (_, probability) in zip(drawn, reference, strict=True):
        assert abs(share - max(probability, 0.005)) < 0.003, (share, probability)
    # Pointing at a map of one network outlines its patch on that network's input only.
    page.locator('.cmp-row[data-stage="objects"] .cmp-cell[data-side="b"] .maps canvas').first.hover()
    assert page.locator('[data-rf="b"]').is_visible() and page.locator('[data-rf="a"]').is_hidden()
    screenshot(page, "laptop-compare")
    for level in ("child", "teen", "adult", "student", "expert"):
        page.select_option("#level", level)
        words = page.locator("#compare-words").text_content()
        assert words and words != "compare"
    assert_clean(page, server, "comparing tiny with resnet18")
    # Back to one network: the usual bands, and the URL forgets the second.
    page.select_option("[data-testid=compare]", "")
    assert page.locator("#flow").is_visible() and page.locator("#compare-view").is_hidden()
    assert "compare" not in query(page)


def test_the_url_holds_both_models(compare_server: tuple[str, dict[str, torch.Tensor]], page_factory: Any) -> None:
    server, _ = compare_server
    page, _guard = page_factory()
    visit(page, f"{server}/?model=tiny&compare=resnet18&level=student")
    assert page.locator("[data-testid=compare]").input_value() == "resnet18"
    assert page.locator("#compare-view").is_visible()
    compare_drawn(page)
    assert_side_by_side(page, server)
    assert query(page)["compare"] == "resnet18" and query(page)["model"] == "tiny"
    # The main model is never offered against itself, and choosing the compared one ends comparing.
    assert page.locator('[data-testid=compare] option[value="tiny"]').is_disabled()
    page.select_option("#model", "resnet18")
    assert page.locator("[data-testid=compare]").input_value() == ""
    assert "compare" not in query(page) and page.locator("#flow").is_visible()


@pytest.mark.parametrize(("wanted", "words"), [
    ("vgg16", "cannot be compared here"), ("nonet", "There is no model called nonet"),
])
def test_a_model_that_cannot_be_compared_says_why(
    wanted: str, words: str, compare_server: tuple[str, dict[str, torch.Tensor]], page_factory: Any,
) -> None:
    server, _ = compare_server
    page, _guard = page_factory()
    visit(page, f"{server}/?model=tiny&compare={wanted}")
    note = page.locator("[data-testid=compare-note]")
    assert note.is_visible() and words in note.text_content()
    if wanted == "vgg16":
        assert "layerscope fetch-weights vgg16" in note.text_content()
    assert page.locator('[data-testid=compare] option[value="vgg16"]').count() == 0  # only available models
    assert page.locator("[data-testid=compare]").input_value() == ""
    assert "compare" not in query(page) and page.locator("#compare-view").is_hidden()


def test_compare_on_a_phone_is_stacked(compare_server: tuple[str, dict[str, torch.Tensor]], page_factory: Any) -> None:
    server, _ = compare_server
    page, _guard = page_factory(390, 844, is_mobile=True, has_touch=True, device_scale_factor=2)
    visit(page, f"{server}/?model=tiny&compare=resnet18")
    compare_drawn(page)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1")
    a = page.locator('.cmp-row[data-stage="edges"] .cmp-cell[data-side="a"]').bounding_box()
    b = page.locator('.cmp-row[data-stage="edges"] .cmp-cell[data-side="b"]').bounding_box()
    assert b["y"] >= a["y"] + a["height"]
    who = page.locator('.cmp-row[data-stage="edges"] .cmp-cell[data-side="b"] .cmp-who').text_content()
    assert who.startswith("ResNet18")
    page.locator('.cmp-row[data-stage="edges"]').scroll_into_view_if_needed()
    screenshot(page, "phone-compare")


def test_compare_in_classroom_mode_follows_the_tour(
    compare_server: tuple[str, dict[str, torch.Tensor]], page_factory: Any,
) -> None:
    server, _ = compare_server
    page, _guard = page_factory(1920, 1080)
    visit(page, f"{server}/?model=tiny&compare=resnet18")
    compare_drawn(page)
    page.locator("[data-testid=classroom]").click()
    page.wait_for_selector("body.classroom")
    for step in ROWS:
        page.locator(f'#dots li[data-stage="{step}"] button').click()
        visible = [s for s in ROWS if page.locator(f'.cmp-row[data-stage="{s}"]').is_visible()]
        assert visible == [step]
        assert page.locator(".cmp-heads").is_visible()
    screenshot(page, "projector-classroom-compare")
    assert_clean(page, server, "comparing in classroom mode")


def test_a_model_not_used_yet_is_completed_when_chosen(
    compare_server: tuple[str, dict[str, torch.Tensor]], page_factory: Any,
) -> None:
    """Listed without its layers until first use, SqueezeNet gets them (and its filters) once the page picks it."""
    server, _ = compare_server
    page, _guard = page_factory()
    listed = {m["id"]: m for m in page.request.get(f"{server}/api/v1/models").json()["models"]}
    assert listed["squeezenet1_0"]["loaded"] is False and listed["squeezenet1_0"]["filters_layer"] is None
    visit(page, f"{server}/?model=squeezenet1_0")
    wait_until(page, "!document.querySelector('#filters').hidden", 60)
    assert "96" in page.locator("#filters-canvas").get_attribute("aria-label")
    assert page.request.get(f"{server}/api/v1/models/squeezenet1_0").json()["filters_layer"] == "features.0"
