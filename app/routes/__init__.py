"""Routers, one per area: the JSON API and the HTML pages."""
