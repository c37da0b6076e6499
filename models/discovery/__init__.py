"""Layers for any network, found rather than listed: its blocks, their geometry and stages (``discover``)."""

from models.discovery.found import Discovery, FoundLayer, default_view, discover, stage_at

__all__ = ["Discovery", "FoundLayer", "default_view", "discover", "stage_at"]
