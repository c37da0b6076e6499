"""Markdown pieces of the model card and the Jinja2 templates that hold its prose.

The templates (``card.md.j2`` for the card, ``snippets.md.j2`` for the pieces the helpers render one by
one) are wrapped for editing; ``unwrap`` gives the card one line per paragraph, list item and table row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

from models.analysis.concepts import TARGET_IOU

TEMPLATES = Path(__file__).parent
CARD_TEMPLATE = "card.md.j2"
SNIPPETS = "snippets.md.j2"

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined, autoescape=False,
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
)

# Lines that stand alone in Markdown: they never join the line before or after them.
_BLOCK = re.compile(r"^(\||#|!\[|<!--|```)")
_ITEM = re.compile(r"^\s*(- |\* |\d+\. )")


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def reached(best: dict[str, float]) -> str:
    """How many concepts' best IoU reach the target, as 'n of N'."""
    return f"{sum(v >= TARGET_IOU for v in best.values())} of {len(best)}"


def and_list(words: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def unwrap(markdown: str) -> str:
    """Join each wrapped paragraph or list item onto one line; tables, headings and code stay as they are."""
    out: list[str] = []
    fenced = joinable = False
    for raw in markdown.split("\n"):
        line = raw.rstrip()
        if line.startswith("```"):
            fenced = not fenced
        if fenced or line.startswith("```"):
            out.append(line)
            joinable = False
        elif joinable and line and not _BLOCK.match(line.lstrip()) and not _ITEM.match(line):
            out[-1] += " " + line.lstrip()
        else:
            out.append(line)
            joinable = bool(line) and not _BLOCK.match(line.lstrip())
    return "\n".join(out)


def snippet(name: str, **values: Any) -> str:
    """One macro of the snippets template, rendered and unwrapped (no trailing newline)."""
    macro = getattr(ENV.get_template(SNIPPETS).module, name)
    return unwrap(str(macro(**values))).strip("\n")


def render_card(context: dict[str, Any]) -> str:
    return unwrap(ENV.get_template(CARD_TEMPLATE).render(**context))
