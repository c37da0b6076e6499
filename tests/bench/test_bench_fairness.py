"""The fairness group's rows: percentiles and ratios from the latencies, judged by the visitor's statuses.

The latencies are made up, so the expected numbers are worked out here by hand (nearest
rank on the sorted list), not taken from the module.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench import fairness
from bench.__main__ import GROUPS


def test_the_group_is_selectable() -> None:
    assert GROUPS["fairness"] is fairness.run


def test_rows_give_flooded_percentiles_and_their_ratio_to_idle() -> None:
    idle = [i / 1000 for i in range(10, 31)]  # 10..30 ms: p50 20, p95 29 (rank round(0.95 * 20) = 19)
    flooded = [3 * t for t in idle]  # three times slower throughout
    rows = fairness.summary("tiny", idle, flooded, Counter({200: 42}), Counter({429: 7}))
    assert [row.name for row in rows] == [
        "visitor's activations p50 during a unit flood",
        "visitor's activations p95 during a unit flood",
    ]
    assert rows[0].ms == pytest.approx(60.0) and rows[1].ms == pytest.approx(87.0)
    assert all(row.ratio == pytest.approx(3.0) for row in rows)
    assert all(row.status == "pass" for row in rows)
    assert "idle p50 20.0 ms" in rows[0].note and "{429: 7}" in rows[1].note


def test_a_refused_visitor_is_a_miss() -> None:
    rows = fairness.summary("tiny", [0.01, 0.02], [0.01, 0.02], Counter({200: 3, 503: 1}), Counter())
    assert {row.status for row in rows} == {"miss"}
