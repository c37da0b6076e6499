"""The measured hierarchy on the page: charts drawn from the dissection the tiny model ships.

Expected numbers come from ``models/weights/tiny.json`` read here (what ``models.analysis.dissect``
wrote), and the bars' geometry is checked against them: what is drawn is what was measured.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import ROOT, screenshot
from tests.browser.test_page import visit, wait_until

pytestmark = pytest.mark.browser

METRICS = json.loads((ROOT / "models" / "weights" / "tiny.json").read_text())["metrics"]
DISSECTION = METRICS["dissection"]
RELIANCE = METRICS["reliance"]
TITLES = list(DISSECTION["trained"])
PLOT_HEIGHT = 176 - 14  # measured.js: PLOT.bottom - PLOT.top, in viewBox units

BARS = """() => [...document.querySelectorAll('#measured [data-chart=units] rect.share')].map((r) => ({
  layer: r.dataset.layer, which: r.dataset.which, kind: r.dataset.kind,
  value: Number(r.dataset.value), height: Number(r.getAttribute('height')),
  drawn: r.getBoundingClientRect().width * r.getBoundingClientRect().height,
}))"""
DOTS = """() => [...document.querySelectorAll('#measured [data-chart=iou] circle.dot')].map((c) => ({
  series: c.dataset.series, layer: c.dataset.layer, value: Number(c.dataset.value),
}))"""


def dots(page: Any) -> dict[tuple[str, str], float]:
    return {(d["series"], d["layer"]): d["value"] for d in page.evaluate(DOTS)}


def test_unit_categories_are_drawn_from_the_dissection(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden])")
    page.locator("#measured").scroll_into_view_if_needed()
    screenshot(page, "measured-hierarchy")
    bars = page.evaluate(BARS)
    kinds = {"edge/colour", "part", "object"}
    assert len(bars) == len(TITLES) * 2 * len(kinds)
    for bar in bars:
        expected = DISSECTION[bar["which"]][bar["layer"]]["category_share"][bar["kind"]]
        assert bar["value"] == pytest.approx(expected)
        assert bar["height"] == pytest.approx(expected * PLOT_HEIGHT, abs=1e-3)
        assert (bar["drawn"] > 0) == (expected > 0)  # on screen, not only in the attributes
    # The hierarchy, as drawn: trained part + object bars are taller in conv5 than in conv1.
    def detectors(layer: str) -> float:
        return sum(b["height"] for b in bars if b["layer"] == layer and b["which"] == "trained"
                   and b["kind"] in ("part", "object"))
    assert detectors(TITLES[-1]) > detectors(TITLES[0])


def test_iou_lines_follow_the_chosen_concept(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden])")
    parts = list(DISSECTION["targets"]["part_best_iou_conv2_5"])
    shown = dots(page)  # default: the mean over part types
    for t in TITLES:
        mean_unit = sum(DISSECTION["trained"][t]["best_iou"][p] for p in parts) / len(parts)
        assert shown[("unit", t)] == pytest.approx(mean_unit)
    page.select_option("#measured-concept", "wheel")
    wait_until(page, "document.querySelector('#measured-concept').value === 'wheel'")
    shown = dots(page)
    for t in TITLES:
        assert shown[("unit", t)] == pytest.approx(DISSECTION["trained"][t]["best_iou"]["wheel"])
        assert shown[("combination", t)] == pytest.approx(DISSECTION["trained"][t]["probe_iou"]["wheel"])
        assert shown[("untrained", t)] == pytest.approx(DISSECTION["untrained"][t]["best_iou"]["wheel"])
        assert shown[("ideal", t)] == pytest.approx(DISSECTION["ceiling_iou"][t]["wheel"])
    # Drawn where the value says: the conv5 dot of the best unit sits at its IoU on the axis.
    cy = float(page.locator('#measured circle.dot.unit[data-layer="conv5"]').get_attribute("cy"))
    assert cy == pytest.approx(176 - DISSECTION["trained"]["conv5"]["best_iou"]["wheel"] * PLOT_HEIGHT, abs=1e-3)
    # A level change keeps the chosen concept.
    page.select_option("#level", "expert")
    assert page.locator("#measured-concept").input_value() == "wheel"


def test_words_follow_the_level_and_carry_the_numbers(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden])")
    texts: dict[str, str] = {}
    for level in ("child", "teen", "adult", "student", "expert"):
        page.select_option("#level", level)
        texts[level] = page.locator("#measured-text").inner_text()
        assert texts[level] and "{" not in texts[level], level
    assert len(set(texts.values())) == 5
    reached = sum(v >= 0.2 for v in DISSECTION["targets"]["part_best_probe_iou_conv2_5"].values())
    assert f"{reached}/{len(DISSECTION['targets']['part_best_iou_conv2_5'])}" in texts["expert"]
    conv5 = DISSECTION["trained"]["conv5"]
    assert f"{round((conv5['part_detectors'] + conv5['object_detectors']) * 100)}\u00a0%" in texts["adult"]


def test_only_for_a_model_with_a_dissection(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden])")
    page.select_option("#model", "alexnet")  # ImageNet has no part masks: nothing measured
    wait_until(page, "document.querySelector('#measured').hidden")
    assert page.locator("#measured [data-chart]").count() == 0
    page.select_option("#model", "tiny")
    page.wait_for_selector("#measured:not([hidden]) [data-chart=units]")


def test_fits_a_small_phone(server: str, page_factory: Any) -> None:
    page, _ = page_factory(360, 740, is_mobile=True, has_touch=True, device_scale_factor=2)
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden])")
    page.locator("#measured").scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1")
    # The charts stacked, each as wide as the figure allows and with its bars on screen.
    boxes = page.evaluate("""() => [...document.querySelectorAll('#measured svg.chart')].map((s) => {
      const r = s.getBoundingClientRect(); return { left: r.left, right: r.right, width: r.width, top: r.top };
    })""")
    assert len(boxes) == 3 and boxes[0]["top"] < boxes[1]["top"] < boxes[2]["top"]
    assert all(b["left"] >= 0 and b["right"] <= 360 + 1 and b["width"] > 250 for b in boxes)
    screenshot(page, "phone-measured")


def test_classroom_tour_ends_with_it_only_when_measured(server: str, page_factory: Any) -> None:
    page, _ = page_factory(1920, 1080)
    visit(page, server)
    page.select_option("#model", "alexnet")
    wait_until(page, "document.querySelector('#measured').hidden")
    page.locator("[data-testid=classroom]").click()
    page.wait_for_selector("body.classroom")
    page.wait_for_selector("[data-testid=predictions] li", state="attached")
    assert page.locator("#dots li").count() == 6
    page.keyboard.press("End")
    assert page.evaluate("document.body.dataset.step") == "prediction"


NEEDS = """() => [...document.querySelectorAll('#measured [data-chart=needs] circle.need')].map((c) => ({
  part: c.dataset.part, changed: Number(c.dataset.changed), iou: Number(c.dataset.iou),
  cx: Number(c.getAttribute('cx')), cy: Number(c.getAttribute('cy')), found: c.classList.contains('found'),
}))"""
NEED_LABELS = """() => [...document.querySelectorAll('#measured [data-chart=needs] text.need-label')].map((n) => {
  const r = n.getBoundingClientRect();
  return { text: n.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom };
})"""


def spearman(a: list[float], b: list[float]) -> float:
    """Pearson correlation of the ranks, computed here (not by the page)."""
    def ranks(v: list[float]) -> list[int]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0] * len(v)
        for rank, i in enumerate(order):
            out[i] = rank
        return out
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    return cov / (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5


def test_what_the_answer_needs_is_drawn_from_the_reliance(server: str, page_factory: Any) -> None:
    page, _ = page_factory(1280, 900)
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden]) [data-chart=needs]")
    page.locator("#measured [data-chart=needs]").scroll_into_view_if_needed()
    screenshot(page, "measured-needs")
    best = DISSECTION["targets"]["part_best_iou_conv2_5"]
    dots_ = {d["part"]: d for d in page.evaluate(NEEDS)}
    assert set(dots_) == set(RELIANCE["parts"]) == set(best)
    for part, d in dots_.items():
        assert d["changed"] == pytest.approx(RELIANCE["parts"][part]["class_changed"])
        assert d["iou"] == pytest.approx(best[part])
        assert d["found"] == (best[part] >= 0.2)
    # Drawn where the values say: x grows with the class-change rate, y with the IoU, linearly.
    ordered = sorted(dots_.values(), key=lambda d: d["changed"])
    lo, hi = ordered[0], ordered[-1]
    for d in ordered:
        share = (d["changed"] - lo["changed"]) / (hi["changed"] - lo["changed"])
        expected_cx = lo["cx"] + share * (hi["cx"] - lo["cx"])
        assert d["cx"] == pytest.approx(expected_cx, abs=1e-3)
    by_iou = sorted(dots_.values(), key=lambda d: d["iou"])
    lo, hi = by_iou[0], by_iou[-1]
    for d in by_iou:
        expected_cy = lo["cy"] + (d["iou"] - lo["iou"]) / (hi["iou"] - lo["iou"]) * (hi["cy"] - lo["cy"])
        assert d["cy"] == pytest.approx(expected_cy, abs=1e-3)
    assert hi["cy"] < lo["cy"]  # higher IoU, higher on screen
    # Every part is named next to its dot, and no two names overlap.
    labels = page.evaluate(NEED_LABELS)
    assert sorted(n["text"] for n in labels) == sorted(best)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            side_by_side = a["right"] <= b["left"] or b["right"] <= a["left"]
            assert side_by_side or a["bottom"] <= b["top"] or b["bottom"] <= a["top"], (a["text"], b["text"])
    # The words quote the correlation, computed here from the same files.
    page.select_option("#level", "expert")
    parts = list(best)
    rho = spearman([RELIANCE["parts"][p]["class_changed"] for p in parts], [best[p] for p in parts])
    text = page.locator("#measured-text").inner_text()
    assert f"\u03c1 = {rho:.2f}" in text
    most = max(parts, key=lambda p: RELIANCE["parts"][p]["class_changed"])
    least = min(parts, key=lambda p: RELIANCE["parts"][p]["class_changed"])
    assert f"{most} {round(RELIANCE['parts'][most]['class_changed'] * 100)}\u00a0%" in text and least in text


I18N = json.loads((ROOT / "static" / "i18n" / "en.json").read_text())


NEEDS_TEXTS = ("measured_needs", "measured_needs_found", "measured_needs_taught", "measured_needs_assigned")
ASSIGNED = {"task": "where", "layer": 4, "units": {"wheel": 0, "window": 1}}


@pytest.mark.parametrize(("least_iou", "taught", "chosen"), [
    (0.04, None, "measured_needs"), (0.31, None, "measured_needs_found"),
    (0.04, {"task": "where", "layer": 4}, "measured_needs_taught"),
    (0.31, {"task": "where", "layer": 4}, "measured_needs_taught"),
    (0.31, ASSIGNED, "measured_needs_assigned"),
])
def test_the_words_claim_no_unit_only_where_there_is_none(server: str, page_factory: Any, least_iou: float,
                                                          taught: dict[str, Any] | None, chosen: str) -> None:
    """The least needed part's best unit, set on either side of 0.20, picks the words; a network
    also taught the parts gets words that say so whatever its units."""
    page, _ = page_factory()
    listing = page.request.get(f"{server}/api/v1/models").json()
    tiny = next(m for m in listing["models"] if m["id"] == "tiny")
    least = min(RELIANCE["parts"], key=lambda p: RELIANCE["parts"][p]["class_changed"])
    tiny["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"][least] = least_iou
    tiny["taught_parts"] = taught
    page.route("**/api/v1/models", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                body=json.dumps(listing)))
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden]) [data-chart=needs]")
    for level in ("child", "student"):
        page.select_option("#level", level)
        text = page.locator("#measured-text").inner_text()
        assert tail(I18N[chosen][level]).strip() and tail(I18N[chosen][level]) in text
        assert level != "child" or least in text  # the child's words name the part
        for other in set(NEEDS_TEXTS) - {chosen}:
            assert tail(I18N[other][level]) not in text


def tail(text: str) -> str:
    """The words after a text's last placeholder: the same on the page whatever was filled in."""
    return text.rsplit("}", 1)[-1]
