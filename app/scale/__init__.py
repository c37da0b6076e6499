"""LayerScope on Ray Serve: the same FastAPI app in every replica, on one machine or a cluster.

``deployment.py`` is the Serve application (the ingress deployment, its per-replica limits,
the builder a Serve config file or KubeRay's ``RayService`` names); ``run.py`` is what
``layerscope serve --ray`` does: start or join Ray, deploy, and take it all down again on
SIGTERM or SIGINT; ``ingress.py`` is how HTTP reaches the replicas (Serve's proxy, direct
ingress or HAProxy) and which limits HAProxy, blind to client addresses, would break. Ray is
an optional extra (``pip install 'layerscope[scale]'``): nothing else in ``app/`` imports
this package, and this file itself imports no Ray.
"""

from __future__ import annotations

import os
from pathlib import Path

# A local Ray instance guards itself with the token Ray keeps in ~/.ray/auth_token. A driver
# joining an instance (`--ray-address`, the tests) sends that token only in token mode, which
# Ray reads once, when it is first imported: so it is set here, before anything imports Ray.
if (Path.home() / ".ray" / "auth_token").is_file() or os.environ.get("RAY_AUTH_TOKEN"):
    os.environ.setdefault("RAY_AUTH_MODE", "token")
