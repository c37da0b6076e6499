"""The web layer of LayerScope: HTTP routes, image intake, inference runtime, encoding."""

import os

# Before torch is first imported: OpenMP's worker threads otherwise spin while they wait for
# work, which on a small shared machine (2 cores, the event loop, other processes) made a
# 5 ms forward pass take 150 ms (bench/, docs/BENCHMARKS.md). A deployment can still override it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
