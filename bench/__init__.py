"""LayerScope's benchmark: every cost as a ratio to the bare forward pass, measured in the same run.

``python -m bench`` (or ``make bench``) prints one table and writes it to
``bench/results/latest.json`` and ``latest.md``. One module per group of rows:

- :mod:`bench.inprocess`: bare forward, capture, capture + encode, and the step breakdown;
- :mod:`bench.peers`: the same extraction with torchvision, Captum and torchlens;
- :mod:`bench.gradcam`: our Grad-CAM against pytorch-grad-cam (time and agreement);
- :mod:`bench.http`: end to end over HTTP, cache hits, concurrency, memory and startup;
- :mod:`bench.naive`: AlexNet end to end and under 8 clients against torchvision's own pass and
  the naive peer server (:mod:`bench.naive_server`);
- :mod:`bench.fairness`: one client's pictures while another floods on-demand unit pictures;
- :mod:`bench.browser`: headless Chromium, file chosen -> every band drawn, page weight.

The machine is shared and noisy, so every group interleaves its candidates with the bare
forward pass repetition by repetition and reports medians; ratios are taken only between
numbers measured side by side.
"""

import os

# Before torch is imported (libgomp reads it once): OpenMP threads that finish a parallel
# region sleep instead of spinning. On a 2-core machine shared with other jobs, spinning
# threads burn the time slice the other torch thread needs: with the default policy tiny's
# forward pass has a 150 ms median instead of 2 ms (AlexNet 194-308 ms instead of 41). The
# server subprocesses inherit it. Set OMP_WAIT_POLICY yourself to measure another policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
