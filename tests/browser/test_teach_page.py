"""Teach it on the page: name two things, show one to the (fake) webcam and upload pictures and
a gallery sample of the other, train with a live curve, then see live predictions beside the
base model's own, the units used and where the evidence lies; and the panel on a phone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.settings import Settings
from tests.browser.conftest import screenshot, start_server, stop_server
from tests.browser.test_a11y import assert_clean
from tests.browser.test_page import visit, wait_until
from tests.conftest import encode
from tests.models.teach.pictures import scenes

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tiny_server() -> Iterator[str]:
    s = start_server(Settings(models="tiny", rate_limit=0))
    yield s.url
    stop_server(s)


def files(name: str, count: int) -> list[dict[str, Any]]:
    return [{"name": f"{name}-{i}.png", "mimeType": "image/png", "buffer": encode(p)}
            for i, p in enumerate(scenes(name, count))]


def count(page: Any, index: int) -> int:
    return int(page.text_content(f"[data-testid=teach-count-{index}]").split()[0])


def test_teach_two_things_and_see_live_predictions(tiny_server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, tiny_server)
    page.wait_for_selector("[data-testid=teach]:not([disabled])")
    page.click("[data-testid=teach]")
    page.wait_for_selector("[data-testid=teach-panel][open]")
    page.fill("[data-testid=teach-name-0]", "camera")
    page.fill("[data-testid=teach-name-1]", "boat")
    page.click("[data-testid=teach-start]")
    page.wait_for_selector("[data-testid=teach-record-0]:not([disabled])")
    assert page.input_value("[data-testid=teach-name-0]") == "camera"

    page.click("[data-testid=teach-camera]")
    wait_until(page, "document.querySelector('#teach-video').videoWidth > 0")
    record = page.locator("[data-testid=teach-record-0]")
    record.hover()
    page.mouse.down()
    page.wait_for_timeout(1500)  # about 5 pictures a second while held
    page.mouse.up()
    wait_until(page, "Number(document.querySelector('[data-testid=teach-count-0]').textContent.split(' ')[0]) >= 5")
    assert count(page, 0) <= 10
    page.set_input_files("[data-testid=teach-upload-1]", files("boat", 6))
    wait_until(page, "document.querySelector('[data-testid=teach-count-1]').textContent.startsWith('6 ')")
    assert page.locator("[data-testid=teach-cards] .teach-thumbs img").count() >= 11
    page.click("[data-testid=teach-samples-toggle-1]")
    page.click("[data-testid=teach-samples-1] li:first-child button")  # a gallery sample as an example
    wait_until(page, "document.querySelector('[data-testid=teach-count-1]').textContent.startsWith('7 ')")

    page.click("[data-testid=teach-train]")
    wait_until(page, "document.querySelector('#teach-status').textContent.startsWith('Trained')")
    drawn = page.evaluate("document.querySelector('#teach-curve').toDataURL().length")
    assert drawn > 2000  # the curve has lines, not a blank canvas
    page.wait_for_selector("[data-testid=teach-units] section", state="attached")

    page.click("[data-testid=teach-live]")
    page.wait_for_selector("[data-testid=teach-predictions] li", state="attached")
    seen = set()
    for _ in range(20):
        seen.add(page.text_content("[data-testid=teach-predictions]"))
        if len(seen) > 2:
            break
        page.wait_for_timeout(250)
    assert len(seen) > 1, "the live predictions never changed"
    assert page.text_content("[data-testid=teach-predictions] li .pred-label") == "camera"
    assert page.locator("#teach-base li").count() == 3
    assert page.locator("[data-testid=teach-why] li").count() >= 1
    page.wait_for_selector("[data-testid=teach-cam]:not([hidden])")
    assert page.get_attribute("#teach-cam-heat", "src").startswith("data:image/png;base64,")
    screenshot(page, "teach")
    page.click("[data-testid=teach-live]")
    assert_clean(page, tiny_server, "with the teaching panel open")
    page.click("#teach-close")


def test_the_panel_fits_a_phone(tiny_server: str, page_factory: Any) -> None:
    page, _ = page_factory(width=390, height=844)
    visit(page, tiny_server)
    page.wait_for_selector("[data-testid=teach]:not([disabled])")
    page.click("[data-testid=teach]")
    page.click("[data-testid=teach-start]")
    page.wait_for_selector("[data-testid=teach-record-1]:not([disabled])")
    sizes = page.evaluate("(() => { const d = document.querySelector('#teach-panel'); "
                          "return [d.getBoundingClientRect().width, d.scrollWidth, innerWidth]; })()")
    assert sizes[0] <= sizes[2] and sizes[1] <= sizes[2], sizes
    assert page.locator("[data-testid=teach-record-1]").is_visible()


def test_the_panel_reads_well_in_classroom_mode(tiny_server: str, page_factory: Any) -> None:
    page, _ = page_factory(width=1920, height=1080)
    visit(page, tiny_server)
    page.click("[data-testid=classroom]")
    page.wait_for_selector("body.classroom")
    page.wait_for_selector("[data-testid=teach]:not([disabled])")
    page.click("[data-testid=teach]")
    page.click("[data-testid=teach-start]")
    page.wait_for_selector("[data-testid=teach-record-1]:not([disabled])")
    screenshot(page, "teach-classroom")
    assert_clean(page, tiny_server, "the teaching panel in classroom mode")  # contrast included
