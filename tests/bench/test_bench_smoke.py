"""The benchmark still runs: in-process rows, 2 repetitions, tiny only, nothing written.

The peer libraries (captum, torchlens, grad-cam) are an optional extra: their rows must come
back "skipped" when they are not importable, never fail the run.
"""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from bench import common, gradcam
from bench.__main__ import parse, run_groups
from bench.common import Config
from bench.report import markdown

EXPECTED = {
    ("in-process", "bare forward"),
    ("in-process", "bare forward, NCHW layout (as torchvision builds it)"),
    ("in-process", "capture (default layers)"),
    ("in-process", "capture + encode (ready to send)"),
    ("in-process", "full pipeline (analyze: bytes in, JSON out)"),
    ("in-process", "step: decode"),
    ("in-process", "step: preprocess"),
    ("in-process", "step: forward (with capture)"),
    ("in-process", "step: quantize"),
    ("in-process", "step: png"),
    ("in-process", "step: json (stats + base64 + dumps)"),
    ("in-process", "JSON size, default layers"),
    ("peers", "bare forward"),
    ("peers", "ours: models.capture"),
    ("gradcam", "bare forward"),
}
PEERS = {"torchvision create_feature_extractor", "Captum LayerActivation", "torchlens trace"}


@pytest.mark.slow
def test_in_process_rows_have_finite_ratios(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hide one peer library (None in sys.modules makes its import fail, as if not installed):
    # its row must come back "skipped" and the rest of the table must not care.
    monkeypatch.setitem(sys.modules, "torchlens", None)
    # One torch thread: this checks the table, not the timings, and under pytest torch is
    # imported before bench can ask OpenMP not to spin (bench/__init__.py), so two threads
    # can stall for long stretches on a busy 2-core machine.
    monkeypatch.setattr(common, "TORCH_THREADS", 1)
    threads = torch.get_num_threads()
    config = Config(reps=2, quick=True, models=("tiny",), groups=("inprocess", "peers", "gradcam"))
    try:
        rows = run_groups(config)
    finally:
        torch.set_num_threads(threads)  # leave the process as the other tests expect it
    names = {(row.group, row.name) for row in rows}
    assert names >= EXPECTED
    peers = {row.name: row for row in rows if row.group == "peers"}
    assert set(peers) >= PEERS  # timed or "skipped", never missing
    assert peers["torchlens trace"].status == "skipped"
    for row in rows:
        assert row.model == "tiny"
        assert row.status in {"pass", "miss", "info", "pending", "skipped"}
        if row.status in {"pending", "skipped"}:
            continue
        assert row.ms is not None or row.value is not None, row
        if row.ms is not None:
            assert row.ratio is not None and math.isfinite(row.ratio) and row.ratio > 0, row
    # pytorch-grad-cam both ways (timed, or skipped when not installed); when timed, our map
    # matches both of its maps and the speed-up row says which call it is judged against.
    cams = {row.name: row for row in rows if row.group == "gradcam"}
    assert {gradcam.AS_BUILT, gradcam.FROZEN} <= set(cams)
    if cams[gradcam.AS_BUILT].status != "skipped":
        assert cams[gradcam.OURS].note.endswith("(ok)"), cams[gradcam.OURS].note
        assert "as built" in cams["speed-up: pytorch-grad-cam / ours"].note
    bare = next(r for r in rows if r.group == "in-process" and r.name == "bare forward")
    assert bare.ratio == 1.0
    # The table renders and the rows serialize.
    assert "capture + encode" in markdown(rows, {"when": "", "seconds": 0, "argv": "", "machine": "", "reps": 2,
                                                 "load_before": "", "load_after": ""})
    json.dumps([row.to_dict() for row in rows])


def test_command_line_flags() -> None:
    config, out = parse(["--quick", "--models", "tiny", "--only", "inprocess", "--no-write"])
    assert config.quick and config.reps == 5 and config.models == ("tiny",) and config.groups == ("inprocess",)
    assert out is None
