"""Watch it learn, in Chromium: a live run draws its filters, curves and maps, can be stopped, and is off by default."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.settings import Settings
from tests.browser.conftest import screenshot, start_server, stop_server
from tests.browser.test_a11y import inject, violations
from tests.browser.test_page import upload, visit, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server() -> Iterator[str]:
    s = start_server(Settings(models="tiny", live_training=True, rate_limit=0))
    yield s.url
    stop_server(s)


def image_pixels(page: Any, selector: str) -> np.ndarray:
    src = page.get_attribute(selector, "src")
    assert src and src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def test_the_control_is_absent_unless_the_server_allows_live_runs(server: str, page_factory: Any) -> None:
    page, _guard = page_factory()
    visit(page, server)
    assert page.locator("[data-testid=live]").count() == 0
    assert page.locator("[data-testid=live-panel]").count() == 0


def test_a_ten_second_run_is_drawn_as_it_learns(live_server: str, page_factory: Any) -> None:
    page, _guard = page_factory()
    visit(page, live_server)
    upload(page)
    page.click("[data-testid=live]")
    page.wait_for_selector("[data-testid=live-panel]", state="visible")  # its module loads on first use
    page.select_option("[data-testid=live-seconds]", "10")
    page.click("[data-testid=live-start]")
    wait_until(page, "document.querySelector('[data-testid=live-maps]').children.length === 5", 60)
    first = image_pixels(page, "[data-testid=live-filters]")
    wait_until(page, "document.querySelector('[data-testid=live-status]').textContent.startsWith('Done')", 90)
    last = image_pixels(page, "[data-testid=live-filters]")
    assert first.shape == last.shape and not np.array_equal(first, last)  # the filters moved
    assert page.is_visible("[data-testid=live-start]") and not page.is_visible("[data-testid=live-stop]")
    label = page.get_attribute("[data-testid=live-accuracy]", "aria-label") or ""
    assert "held-out accuracy" in label
    drawn = page.evaluate("""() => { const c = document.querySelector('[data-testid=live-loss]');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let ink = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] < 120 || d[i + 2] > 150)) ink++;
      return ink; }""")
    assert drawn > 50  # the loss curve is on the canvas
    screenshot(page, "live-done")
    inject(page, live_server)
    assert violations(page, live_server) == []


def test_stop_ends_the_run_and_a_new_one_can_start(live_server: str, page_factory: Any) -> None:
    page, _guard = page_factory()
    visit(page, live_server)
    page.click("[data-testid=live]")
    page.wait_for_selector("[data-testid=live-panel]", state="visible")
    page.select_option("[data-testid=live-seconds]", "180")
    page.click("[data-testid=live-start]")
    wait_until(page, "document.querySelector('[data-testid=live-maps]').children.length === 5", 60)
    page.click("[data-testid=live-stop]")
    wait_until(page, "document.querySelector('[data-testid=live-status]').textContent === 'Stopped.'")
    page.select_option("[data-testid=live-seconds]", "10")
    page.check("[data-testid=live-budget]")
    page.click("[data-testid=live-start]")  # the server freed its one live slot when the stream closed
    wait_until(page, "document.querySelector('[data-testid=live-status]').textContent.startsWith('Done')", 120)
    label = page.get_attribute("[data-testid=live-accuracy]", "aria-label") or ""
    assert "the same 256 pictures" in label and "new pictures every step" in label


def test_in_classroom_mode_the_panel_takes_the_stage(live_server: str, page_factory: Any) -> None:
    page, _guard = page_factory(width=1920, height=1080)
    visit(page, live_server)
    upload(page)
    page.click("[data-testid=classroom]")
    page.wait_for_selector("body.classroom")
    page.click("[data-testid=live]")
    page.wait_for_selector("[data-testid=live-panel]", state="visible")
    assert not page.is_visible("#hierarchy")
    page.select_option("[data-testid=live-seconds]", "10")
    page.click("[data-testid=live-start]")
    wait_until(page, "document.querySelector('[data-testid=live-maps]').children.length === 5", 60)
    screenshot(page, "live-classroom")
    inject(page, live_server)
    assert violations(page, live_server) == []  # contrast on the dark projector theme included
    page.click("[data-testid=live-stop]")
