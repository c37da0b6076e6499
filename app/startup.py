"""The few lines the server says when it starts: what it serves, and what it lists without serving.

A newcomer sees at once which models the page offers, which are listed without their
weights together with the one command that fetches each, and which of their own models
could not be loaded and why (models/zoo/custom.py logs each mistake on its own line too).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from models.zoo.registry import ModelEntry

log = logging.getLogger("layerscope")


def summary_lines(registry: Mapping[str, ModelEntry]) -> list[str]:
    """One line for the served models, then one for each listed model the server cannot serve."""
    served = [entry.id for entry in registry.values() if entry.available]
    lines = [f"layerscope: serving {', '.join(served) if served else 'no model'}"]
    for entry in registry.values():
        if entry.available:
            continue
        if entry.group == "custom":
            lines.append(f"layerscope: {entry.id} is listed but not served: {entry.unavailable_reason}")
        else:
            lines.append(f"layerscope: {entry.id} is listed without its weights; fetch them with: {entry.how_to_get}")
    return lines


def log_summary(registry: Mapping[str, ModelEntry]) -> None:
    """The summary on the ``layerscope`` logger (``layerscope serve`` shows it on stderr)."""
    for line in summary_lines(registry):
        log.info(line)
