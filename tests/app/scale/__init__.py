"""Tests of app/scale/. ``app.scale`` is imported first: it tells Ray, before anything imports
it, to use the token of the local Ray instance these tests join."""

import app.scale  # noqa: F401
