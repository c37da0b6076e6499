"""The web layer of LayerScope: HTTP routes, image intake, inference runtime, encoding."""
