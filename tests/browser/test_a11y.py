"""Accessibility: axe-core's WCAG 2.1 A and AA rules find nothing on the page, in every state a
visitor reaches (as loaded, after an upload, with the close-up open, in classroom mode).

axe-core comes from npm (``package.json``, installed into ``node_modules`` by ``make test``) and is
served to the page from its own origin by the test, so the page keeps its strict CSP and nothing
is fetched from outside.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROOT
from tests.browser.test_page import upload, visit, wait_until

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/__test__/axe.min.js"  # a path the app does not serve: only the test's route answers it
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN = """(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
  .then((r) => ({ violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(' ')), summaries: v.nodes.map((n) => n.failureSummary) })),
    passes: r.passes.length }))"""


def needs_label() -> str:
    """The "what the answer needs" chart's name, filled here from the numbers the model ships."""
    metrics = json.loads((ROOT / "models" / "weights" / "tiny.json").read_text())["metrics"]
    best = metrics["dissection"]["targets"]["part_best_iou_conv2_5"]
    changed = {p: r["class_changed"] for p, r in metrics["reliance"]["parts"].items() if p in best}
    most = max(changed, key=lambda p: changed[p])
    template = json.loads((ROOT / "static" / "i18n" / "en.json").read_text())["ui"]["measured_needs_aria"]
    values = {"found": sum(best[p] >= 0.2 for p in changed), "n": len(changed), "needed": most,
              "needed_pct": f"{math.floor(changed[most] * 100 + 0.5)}\u00a0%"}
    for key, value in values.items():
        template = template.replace(f"{{{key}}}", str(value))
    return str(template)


def axe_source() -> Path:
    if not AXE.is_file():
        pytest.fail(f"{AXE.relative_to(ROOT)} is missing: run `npm ci` (make test does) to install axe-core")
    return AXE


def inject(page: Any, server: str) -> None:
    """axe-core as a same-origin script, so the page's script-src 'self' lets it run."""
    page.route(f"{server}{AXE_PATH}", lambda route: route.fulfill(path=str(axe_source()),
                                                                   content_type="text/javascript"))
    page.add_script_tag(url=f"{server}{AXE_PATH}")


def violations(page: Any, server: str) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe === 'object'"):
        inject(page, server)
    result = page.evaluate(RUN, TAGS)
    return list(result["violations"])


def report(found: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']}\n  " + "\n  ".join(
        f"{t}: {s}" for t, s in zip(v["targets"], v["summaries"], strict=True)) for v in found)


def assert_clean(page: Any, server: str, state: str) -> None:
    found = violations(page, server)
    assert not found, f"axe-core, {state}:\n{report(found)}"


def test_axe_runs_and_can_fail(server: str, page_factory: Any) -> None:
    """The check itself: on the page, an svg drawn as an image with no text alternative is found."""
    page, _ = page_factory()
    visit(page, server)
    page.evaluate("""() => {
      const s = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      s.setAttribute('role', 'img'); s.setAttribute('data-probe', '1');
      s.setAttribute('width', '40'); s.setAttribute('height', '40');
      document.querySelector('main').append(s);
    }""")
    found = {v["id"]: v["targets"] for v in violations(page, server)}
    assert 'svg[data-probe="1"]' in found.get("svg-img-alt", []), found


def test_the_page_as_loaded(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    page.wait_for_selector("#measured:not([hidden]) [data-chart=needs]")
    assert_clean(page, server, "as loaded")
    page.select_option("#model", "alexnet")  # another model's note and card, and no measured panel
    wait_until(page, "document.querySelector('#measured').hidden")
    assert_clean(page, server, "as loaded, alexnet chosen")


def test_after_an_upload_with_every_chart(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    upload(page)
    page.wait_for_selector("#measured:not([hidden]) [data-chart=needs]")
    page.locator("#measured").scroll_into_view_if_needed()
    assert page.locator("#measured svg.chart").count() == 3
    assert_clean(page, server, "after an upload")
    # Every chart and map drawn as an image names what it shows, in the page's words.
    names = page.evaluate("""() => [...document.querySelectorAll('[role=img]')]
      .filter((n) => !n.closest('[hidden]')).map((n) => ({ tag: n.tagName.toLowerCase(),
        chart: n.dataset.chart || '', name: n.getAttribute('aria-label') || '' }))""")
    charts = {n["chart"]: n["name"] for n in names if n["chart"]}
    assert set(charts) == {"units", "iou", "needs"}
    assert charts["needs"] == needs_label()
    assert all(n["name"].strip() and "{" not in n["name"] for n in names), names
    # The level changes the words around the charts: still clean.
    page.select_option("#level", "expert")
    wait_until(page, "document.querySelector('#level').value === 'expert'")
    assert_clean(page, server, "after an upload, expert level")


def test_with_the_closeup_open(server: str, page_factory: Any) -> None:
    page, _ = page_factory()
    visit(page, server)
    upload(page)
    page.locator('.band[data-stage="parts"] .map-btn canvas').first.click()
    page.wait_for_selector("#closeup", state="visible")
    assert_clean(page, server, "close-up open")


def test_in_classroom_mode(server: str, page_factory: Any) -> None:
    page, _ = page_factory(1920, 1080)
    visit(page, server)
    upload(page)
    page.locator("[data-testid=classroom]").click()
    page.wait_for_selector("body.classroom")
    page.keyboard.press("End")
    assert page.evaluate("document.body.dataset.step") == "measured"
    assert_clean(page, server, "classroom, measured step")
    page.keyboard.press("Home")
    assert_clean(page, server, "classroom, first step")
