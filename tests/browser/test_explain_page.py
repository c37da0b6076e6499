"""The explanation API on the page: filters, Grad-CAM, unit close-up, named units,
the training-checkpoint slider and the unfamiliar-input notice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import ROOT, screenshot
from tests.browser.test_page import PHOTO, query, upload, visit, wait_until

pytestmark = pytest.mark.browser

PHOTOS = sorted((ROOT / "static" / "samples").glob("photo-*"))

# Distinct colours and non-transparent pixels of a canvas or an (already decoded) image.
PIXELS = """(node) => {
  const w = node.naturalWidth || node.width, h = node.naturalHeight || node.height;
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  ctx.drawImage(node, 0, 0);
  const d = ctx.getImageData(0, 0, w, h).data;
  const distinct = new Set();
  let visible = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0) visible++;
    distinct.add(d[i] << 24 | d[i + 1] << 16 | d[i + 2] << 8 | d[i + 3]);
  }
  return { w, h, visible, distinct: distinct.size };
}"""

MAPS_PIXELS = """(stage) => [...document.querySelectorAll(`.band[data-stage="${stage}"] .maps canvas`)]
  .map((c) => c.toDataURL()).join('|')"""


ANALYZE = """async (src) => {
  const data = new FormData();
  data.append('image', await (await fetch(src)).blob(), 'picture');
  return (await fetch('/api/v1/models/tiny/activations?top_k=5', { method: 'POST', body: data })).json();
}"""


def input_size(page: Any, model: str = "tiny") -> int:
    """The model's input side in pixels, as the server reports it."""
    return int(page.evaluate(f"fetch('/api/v1/models/{model}').then(r => r.json()).then(m => m.input_size)"))


def shown_maps(page: Any) -> int:
    return page.locator(".band .maps .map-btn").count()


def test_filters_beside_the_edges_band(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    page.wait_for_selector("#filters:not([hidden])")
    canvas = page.locator("#filters-canvas")
    # The server's own count: conv1's kernels as the model holds them.
    count = page.evaluate("fetch('/api/v1/models/tiny/filters').then(r => r.json()).then(f => f.shape[0])")
    assert count >= 16 and canvas.get_attribute("data-filters") == str(count)
    assert f"{count} first-layer filters" in (canvas.get_attribute("aria-label") or "")
    stats = canvas.evaluate(PIXELS)
    assert stats["w"] >= 150 and stats["visible"] > 0.5 * stats["w"] * stats["h"]
    assert stats["distinct"] > 50, "the filters are blank"
    upload(page)
    page.locator('.band[data-stage="edges"]').scroll_into_view_if_needed()
    # Pointing at edge map c outlines filter c.
    first = page.locator('.band[data-stage="edges"] .maps .map-btn').first
    first.locator("canvas").hover()
    box = page.locator("#filter-box")
    assert box.is_visible()
    c = int(first.get_attribute("data-channel"))
    # The grid's columns as the server lays out the atlas (6 for 32 filters: ceil(sqrt(n))).
    columns = page.evaluate("fetch('/api/v1/models/tiny/filters').then(r => r.json()).then(f => f.atlas.columns)")
    grid = page.locator("#filters-canvas").bounding_box()
    spot = box.bounding_box()
    column, row = (
        round((spot["x"] - grid["x"]) / (grid["width"] / columns)),
        round((spot["y"] - grid["y"]) / (grid["width"] / columns)),
    )
    assert (row, column) == divmod(c, columns)
    screenshot(page, "laptop-explain-filters")


def test_prediction_click_shows_gradcam(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    upload(page)
    assert page.locator("#pred-hint").is_visible()
    second = page.locator("#predictions .pred-btn").nth(1)
    label = second.locator(".pred-label").text_content()
    with page.expect_response(lambda r: "/gradcam" in r.url) as answer:
        second.click()
    # The server's default layer (conv5): tiny's conv5 Grad-CAM localizes (explain/metrics.json).
    assert answer.value.ok and "layer=" not in answer.value.url and answer.value.json()["layer"] == "features.11"
    wait_until(page, "!document.querySelector('#cam').classList.contains('busy')")
    heat = page.locator("#cam-heat")
    assert heat.evaluate("img => img.complete && img.naturalWidth") == input_size(page)
    stats = heat.evaluate(PIXELS)
    assert stats["visible"] > 0 and stats["distinct"] > 10, "the Grad-CAM overlay is empty"
    assert label in (heat.get_attribute("alt") or "") and label in page.locator("#cam-cap").text_content()
    assert second.get_attribute("aria-pressed") == "true"
    page.locator('.band[data-stage="prediction"]').scroll_into_view_if_needed()
    screenshot(page, "laptop-explain-gradcam")
    # Keyboard: the rows are buttons.
    first = page.locator("#predictions .pred-btn").first
    first.focus()
    page.keyboard.press("Enter")
    wait_until(page, "document.querySelector('#predictions .pred-btn').getAttribute('aria-pressed') === 'true'")
    page.keyboard.press("Enter")  # a second press hides the heat map
    assert page.locator("#cam").is_hidden() and first.get_attribute("aria-pressed") == "false"
    # A new picture clears the old heat map.
    upload(page, ROOT / "static" / "samples" / "world-house.png")
    assert page.locator("#cam").is_hidden()


@pytest.mark.parametrize("layer", ["features.9", "features.11"])
def test_closeup_shows_what_a_unit_looks_for(server: str, page_factory: Any, layer: str) -> None:
    page, _ = page_factory()
    visit(page, server)
    upload(page)
    button = page.locator(f'.layer[data-layer="{layer}"] .maps .map-btn').first
    channel = int(button.get_attribute("data-channel"))
    button.click()
    page.wait_for_selector("#uv-featvis:not([hidden])")
    page.wait_for_selector("#uv-patches:not([hidden])")
    page.wait_for_selector("#uv-backprop:not([hidden])")
    info = page.evaluate(f"fetch('/api/v1/models/tiny/units/{layer}/{channel}').then(r => r.json())")
    title = page.locator("#unit-label").text_content()
    assert title.startswith(f"{info['title']} #{channel}: ")
    if info["named"]:
        assert f"{info['label']} detector, IoU" in title
    featvis = page.locator("#featvis").evaluate(PIXELS)
    assert featvis["w"] >= 64 and featvis["distinct"] > 50
    patches = page.locator("#patches").evaluate(PIXELS)
    assert patches["w"] == 9 * patches["h"] or patches["h"] == 9 * patches["w"]
    backprop = page.locator("#backprop")
    assert backprop.evaluate("img => img.naturalWidth") == input_size(page)
    assert backprop.evaluate(PIXELS)["distinct"] > 10
    for img in ("#featvis", "#patches", "#backprop"):
        assert page.locator(img).get_attribute("alt")
    assert page.locator("#unit-busy").is_hidden()
    page.locator("#unit").scroll_into_view_if_needed()
    screenshot(page, f"laptop-explain-unit-{layer}")
    page.keyboard.press("Escape")
    assert page.locator("#uv-featvis").is_hidden()


def test_named_units_toggle_and_labels(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    upload(page)
    page.wait_for_selector("#named-wrap:not([hidden])")
    wait_until(page, "document.querySelectorAll('.map-caption .unit-tag').length > 0")
    before = shown_maps(page)
    named = page.evaluate(
        "fetch('/api/v1/models/tiny/units?layer=features.11&named=true').then(r => r.json()).then(j => j.units.length)"
    )
    page.locator("#named-only").check()
    after = shown_maps(page)
    assert 0 < after < before, (before, after)
    assert query(page)["named"] == "1"
    assert page.locator('.band[data-stage="edges"] .none-named').is_visible()
    objects = page.locator('.layer[data-layer="features.11"]')
    assert f"Show all {named} named units" == objects.locator(".show-all").text_content()
    caption = objects.locator(".map-caption .unit-tag").first.text_content()
    assert caption and caption.split()[-1].replace(".", "").isdigit()
    page.locator('.band[data-stage="parts"]').scroll_into_view_if_needed()
    screenshot(page, "laptop-explain-named")
    page.locator("#named-only").uncheck()
    assert shown_maps(page) == before


def test_checkpoint_slider_shows_learning(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    upload(page)
    page.wait_for_selector("#ckpt:not([hidden])")
    slider = page.locator("#checkpoint")
    assert slider.get_attribute("aria-label") == "training: before / 1 % / 10 % / finished"
    assert page.locator("#ckpt-ticks").text_content() == "before1 %10 %finished"
    final_maps = page.evaluate(MAPS_PIXELS, "edges")
    final_filters = page.locator("#filters-canvas").evaluate("c => c.toDataURL()")
    page.evaluate("performance.clearMarks('ls:bands-drawn')")
    slider.focus()
    with page.expect_response(lambda r: "/activations?" in r.url and "checkpoint=init" in r.url):
        page.keyboard.press("Home")
    wait_until(page, "performance.getEntriesByName('ls:bands-drawn').length > 0")
    assert query(page)["checkpoint"] == "init"
    assert "before" in (slider.get_attribute("aria-valuetext") or "")
    wait_until(page, f"document.querySelector('#filters-canvas').toDataURL() !== {json.dumps(final_filters)}")
    assert page.evaluate(MAPS_PIXELS, "edges") != final_maps, "the maps did not change at the init checkpoint"
    page.locator('.band[data-stage="edges"]').scroll_into_view_if_needed()
    screenshot(page, "laptop-explain-checkpoint-init")
    # The checkpoint survives a reload from the URL; End goes back to the finished model.
    other, _ = page_factory()
    visit(other, page.url)
    assert other.locator("#checkpoint").input_value() == "0"
    page.evaluate("performance.clearMarks('ls:bands-drawn')")
    slider.focus()
    page.keyboard.press("End")
    wait_until(page, "performance.getEntriesByName('ls:bands-drawn').length > 0")
    assert "checkpoint" not in query(page)
    assert page.evaluate(MAPS_PIXELS, "edges") == final_maps


def test_unfamiliar_notice_follows_the_server(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    for photo in PHOTOS:
        with page.expect_response(lambda r: "/activations" in r.url) as answer:
            upload(page, photo)
        ood = answer.value.json()["ood"]
        assert ood is not None
        assert page.locator("#ood").is_visible() == ood["unfamiliar"], photo.name
        assert page.locator("#verdict-ood").is_visible() == ood["unfamiliar"], photo.name

    # Whatever the shipped threshold says about our samples, an unfamiliar answer shows the notice.
    body = page.evaluate(ANALYZE, "/static/samples/" + PHOTO.name)
    body["ood"] = {"score": -1.5, "threshold": -3.4186, "unfamiliar": True}
    page.route(
        "**/activations*",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(body)),
    )
    upload(page, PHOTO)
    notice = page.locator("#ood")
    assert notice.is_visible()
    assert "doesn't look like the parts world" in notice.text_content()
    assert page.locator("#verdict-ood").is_visible()
    page.locator('.band[data-stage="prediction"]').scroll_into_view_if_needed()
    screenshot(page, "laptop-explain-ood")
    page.select_option("#level", "expert")
    assert "-1.5" in notice.text_content() and "OOD" in notice.text_content()
    page.unroute("**/activations*")
    upload(page)
    assert notice.is_hidden()


def test_alexnet_unit_shows_progress_and_page_stays_usable(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    held: list[Any] = []
    page.route("**/units/features.*/*", lambda r: held.append(r) if "backprop" not in r.request.url else r.continue_())
    visit(page, f"{server}/?model=alexnet")
    assert page.locator("#ckpt").is_hidden()
    upload(page, PHOTO)
    page.locator('.layer[data-layer="features.11"] .maps .map-btn').first.click()
    busy = page.locator("#unit-busy")
    assert busy.is_visible() and "takes a while for a network of photos" in busy.text_content()
    wait_until(
        page,
        "getComputedStyle(document.querySelector('#unit-busy'), '::before').animationName === 'spin'"
        " || matchMedia('(prefers-reduced-motion: reduce)').matches",
    )
    screenshot(page, "laptop-explain-alexnet-busy")
    page.keyboard.press("Escape")
    assert page.locator("#closeup").is_hidden()
    page.locator("#predictions .pred-btn").first.click()
    wait_until(page, "!document.querySelector('#cam').classList.contains('busy')")
    assert page.locator("#cam-heat").evaluate("img => img.naturalWidth") == 224


def test_explanations_fit_a_phone(server: str, page_factory: Any) -> None:
    page, _ = page_factory(390, 844, is_mobile=True, has_touch=True, device_scale_factor=2)
    visit(page, server)
    upload(page)
    page.locator("#predictions .pred-btn").nth(1).tap()
    wait_until(page, "!document.querySelector('#cam').classList.contains('busy')")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1")
    page.locator("#cam").scroll_into_view_if_needed()
    screenshot(page, "phone-explain-gradcam")
    page.locator('.layer[data-layer="features.11"] .maps .map-btn').first.tap()
    page.wait_for_selector("#uv-backprop:not([hidden])")
    page.wait_for_selector("#uv-patches:not([hidden])")
    page.locator("#unit").scroll_into_view_if_needed()
    screenshot(page, "phone-explain-unit")


def test_a_unit_taught_its_part_says_so_beside_what_dissection_found(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    titles = page.evaluate("""async () => {
      const { unitTitle } = await import('/static/js/unitinfo.js');
      const found = { named: true, description: 'mouth detector', iou: 0.314, label: 'mouth' };
      return [unitTitle('conv4', 5, { ...found, taught: 'mouth' }), unitTitle('conv4', 5, found),
              unitTitle('conv4', 7, { named: false, description: null, taught: 'nose' })];
    }""")
    ui = json.loads((ROOT / "static" / "i18n" / "en.json").read_text())["ui"]
    taught = ui["unit_taught"]
    assert titles[0] == "conv4 #5: mouth detector, IoU 0.31 " + taught.replace("{part}", "mouth")
    assert titles[1] == "conv4 #5: mouth detector, IoU 0.31"
    assert titles[2] == ui["unit_unnamed"].replace("{layer}", "conv4").replace("{c}", "7") + " " + taught.replace(
        "{part}", "nose")


def test_taught_units_are_marked_on_their_maps(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    upload(page)
    listing = page.evaluate("fetch('/api/v1/models/tiny/units?layer=features.9').then(r => r.json())")
    taught = {u["channel"]: u["taught"] for u in listing["units"] if u["taught"]}
    assert taught, "the shipped recipe gives conv4 units a part type each"
    ui = json.loads((ROOT / "static" / "i18n" / "en.json").read_text())["ui"]
    page.locator("#named-only").check()
    wait_until(page, "document.querySelectorAll('.layer[data-layer=\"features.9\"] .map-btn.large').length > 0")
    buttons = page.evaluate("""[...document.querySelectorAll('.layer[data-layer="features.9"] .map-btn')].map((b) => ({
      c: Number(b.dataset.channel), large: b.classList.contains('large'),
      caption: b.querySelector('.map-caption')?.textContent ?? '',
      aria: b.querySelector('canvas').getAttribute('aria-label'),
    }))""")
    marked = 0
    for b in buttons:
        said = ui["unit_taught"].replace("{part}", taught.get(b["c"], "?"))
        assert (said in b["aria"]) == (b["c"] in taught), b
        if b["large"]:
            short = ui["unit_taught_short"].replace("{part}", taught.get(b["c"], "?"))
            assert (short in b["caption"]) == (b["c"] in taught), b
            marked += b["c"] in taught
    assert marked > 0, "no taught unit among the named units shown large"
