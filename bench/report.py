"""The table: printed to the terminal, written as JSON and markdown."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import TORCH_THREADS, Config, Row, load_average

COLUMNS = ("group", "model", "row", "median ms", "best ms", "ratio", "value", "target", "status", "note")


def machine() -> str:
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{name}, {system}, Python {platform.python_version()}, torch {torch.__version__}"


def cells(row: Row) -> list[str]:
    def number(value: float | None, digits: int = 1) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    return [
        row.group,
        row.model,
        row.name,
        number(row.ms, 2 if row.ms is not None and row.ms < 10 else 1),
        number(row.best_ms, 2 if row.best_ms is not None and row.best_ms < 10 else 1),
        "" if row.ratio is None else f"{row.ratio:.2f}x",
        "" if row.value is None else f"{row.value:.1f} {row.unit}",
        row.target,
        row.status,
        row.note,
    ]


def markdown(rows: list[Row], context: dict[str, Any]) -> str:
    lines = [
        "# LayerScope benchmark: latest run",
        "",
        f"- when: {context['when']}; took {context['seconds']:.0f} s; `python -m bench {context['argv']}`".rstrip(),
        f"- machine: {context['machine']}",
        f"- torch: {TORCH_THREADS} intra-op threads (a model's own fewer where it asks: tiny 1), 1 inter-op"
        " thread (the server's settings); batch 1;"
        f" OMP_WAIT_POLICY={context.get('omp_wait_policy')}",
        f"- repetitions: {context['reps']} per row, interleaved with the bare forward pass; medians",
        f"- load average (1/5/15 min) before: {context['load_before']}; after: {context['load_after']}",
        "- ratio: to the bare forward pass of the same model on the same input, measured in the same loop",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text(rows: list[Row]) -> str:
    table = [list(COLUMNS)] + [cells(row) for row in rows]
    widths = [min(60, max(len(r[i]) for r in table)) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c[:60].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table)


def context(config: Config, argv: list[str], started: float, load_before: str) -> dict[str, Any]:
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds": time.perf_counter() - started,
        "argv": " ".join(argv),
        "machine": machine(),
        "reps": config.reps,
        "quick": config.quick,
        "load_before": load_before,
        "load_after": load_average(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default: spin)"),
    }


def write(rows: list[Row], info: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    document = {"context": info, "rows": [r.to_dict() for r in rows]}
    (folder / "latest.json").write_text(json.dumps(document, indent=1) + "\n")
    (folder / "latest.md").write_text(markdown(rows, info))
