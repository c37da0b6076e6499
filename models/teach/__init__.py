"""Teaching a base network new classes: a head on its frozen features, trained in seconds.

One module per concept: ``features`` (the pooled last conv layer of the base network and
its own logits, one batched pass), ``head`` (the linear head and its standardization),
``train`` (a seeded, sliceable training with progress reports and a held-out split),
``units`` (which units a class leans on: weight times standardized activation), ``cam``
(where the evidence for a taught class lies), ``export``
(the head as a checked .safetensors file) and ``names`` (what a class may be called).
Nothing here knows HTTP; the web layer keeps the sessions (app/teach.py).
"""
