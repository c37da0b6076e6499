"""Row 6: the page in headless Chromium: file chosen -> every band drawn, and page weight.

The page sets two performance marks: ``ls:file-chosen`` when the file input changes and
``ls:bands-drawn`` once every band is on screen. Each repetition chooses a different 640x480
JPEG (a cache miss on the server), waits for the second mark and reads the time between
them. Page weight is the HTML, JavaScript and CSS bytes the server sent while the page
loaded (as served, no compression). Debian's Chromium is driven through Playwright; if
Playwright, Chromium or the page's marks are missing, the rows say "skipped"/"pending".
"""

from __future__ import annotations

import shutil
import statistics
from typing import Any

from bench.common import Config, Row, judge, photo_jpeg
from bench.server import serve

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
TARGETS_S = {"alexnet": 1.0, "tiny": 0.3}
PAGE_WEIGHT_TARGET_KB = 150.0
COUNTED = {"document", "script", "stylesheet"}
CLEAR_JS = "() => { performance.clearMarks('ls:file-chosen'); performance.clearMarks('ls:bands-drawn'); }"
MARKS_JS = """() => {
  const chosen = performance.getEntriesByName('ls:file-chosen');
  const drawn = performance.getEntriesByName('ls:bands-drawn');
  return chosen.length && drawn.length ? drawn[drawn.length - 1].startTime - chosen[chosen.length - 1].startTime : null;
}"""


def run(config: Config) -> list[Row]:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import FilePayload, sync_playwright
    except ImportError as exc:
        return [Row("browser", "-", "browser rows", status="skipped", note=f"not installed ({exc.name})")]
    if not shutil.which(CHROMIUM):
        return [Row("browser", "-", "browser rows", status="skipped", note=f"{CHROMIUM} not found")]
    rows: list[Row] = []
    reps = 3 if config.quick else 7
    with serve() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            responses: list[Any] = []
            page.on("response", lambda response: responses.append(response))  # needs a Python function
            page.goto(server.url + "/", wait_until="load")
            page.wait_for_function("() => document.body.classList.contains('ready')", timeout=60_000)
            weight = {"html+js+css": 0, "other": 0}
            for response in responses:
                kind = "html+js+css" if response.request.resource_type in COUNTED else "other"
                try:
                    weight[kind] += len(response.body())
                except PlaywrightError:  # a redirect or a body the browser did not keep
                    continue
            kb = weight["html+js+css"] / 1000
            rows.append(Row("browser", "-", "page weight: HTML + JS + CSS as served", value=kb, unit="KB",
                            target=f"< {PAGE_WEIGHT_TARGET_KB:g} KB", status=judge(kb < PAGE_WEIGHT_TARGET_KB),
                            note=f"+{weight['other'] / 1000:.1f} KB other (fonts, JSON, images) at load"))
            variant = 1000
            for model in config.models:
                try:
                    page.select_option("#model", model)
                except PlaywrightError as exc:
                    rows.append(Row("browser", model, "file chosen -> bands drawn", status="pending",
                                    note=f"cannot choose the model: {str(exc)[:100]}"))
                    continue
                times: list[float] = []
                note = ""
                for _ in range(reps + 1):  # the first is a warm-up (lazy module loads, JIT)
                    variant += 1
                    page.evaluate(CLEAR_JS)
                    payload: FilePayload = {"name": f"photo{variant}.jpg", "mimeType": "image/jpeg",
                                            "buffer": photo_jpeg(variant)}
                    page.set_input_files("#file", files=[payload])
                    try:
                        page.wait_for_function(MARKS_JS, timeout=60_000)
                    except PlaywrightError:
                        note = "the page set no 'ls:bands-drawn' mark within 60 s"
                        break
                    times.append(page.evaluate(MARKS_JS) / 1000)
                times = times[1:]
                if not times:
                    rows.append(Row("browser", model, "file chosen -> bands drawn", status="pending", note=note))
                    continue
                median = statistics.median(times)
                rows.append(Row("browser", model, "file chosen -> bands drawn", ms=median * 1000,
                                best_ms=min(times) * 1000, target=f"<= {TARGETS_S[model]:g} s",
                                status=judge(median <= TARGETS_S[model]),
                                note=f"{len(times)} distinct pictures (cache misses)"))
        finally:
            browser.close()
    return rows
