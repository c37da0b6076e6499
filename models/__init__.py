"""The deep-learning side of LayerScope: networks, weights, capture and the parts world.

Nothing here knows about HTTP; the web layer in ``app/`` builds on it.
"""
