"""Every module a person may ask for by its dotted name, beside the few that are offered.

The offered layers (models/discovery/found.py) are a network's natural blocks; any other
module that ran exactly once and returned one tensor can still be asked for by its
``named_modules()`` name. Each gets its geometry placed the same way (models/discovery/placement.py)
and the stage of the offered layer it sits in, else of the last offered layer the pass
reached before it. A module that ran more than once (a shared ReLU) has no single output
and is left out, as is a map that cannot be placed on the picture (a transformer's tokens).
"""

from __future__ import annotations

from torch import nn

from models.discovery.found import Discovery
from models.discovery.placement import Placer, is_map, whole
from models.discovery.probe import one_thread
from models.discovery.trace import run_trace
from models.layers import LayerInfo


def every_layer(network: nn.Module, found: Discovery, channels: int = 3) -> dict[str, LayerInfo]:
    """LayerInfo for every askable module of ``network``, in forward order; the offered ones as ``found`` has them."""
    offered = found.infos()
    size = found.input_size
    with one_thread():
        trace = run_trace(network, size, channels)
        placer = Placer(trace)
        reached = sorted((calls[0].start, name) for name, calls in trace.calls.items() if name and calls)
        infos: dict[str, LayerInfo] = {}
        stage = found.layers[0].stage if found.layers else "edges"
        for _start, name in reached:
            if name in offered:
                infos[name] = offered[name]
                stage = offered[name].stage
                continue
            call = trace.first(name)
            if not trace.ran_once(name) or call is None or call.output_shape is None:
                continue
            geometry = whole(size) if len(call.output_shape) == 2 else None
            if is_map(call.output_shape):
                geometry = placer.output(name)
            if geometry is None:
                continue
            block = next((o for o in offered if name.startswith(f"{o}.")), None)
            own = offered[block].stage if block is not None else "classes" if len(call.output_shape) == 2 else stage
            title = f"{name} ({type(trace.modules[name]).__name__})"
            infos[name] = LayerInfo(name, title, own, geometry.receptive_field, geometry.stride, geometry.offset)
    return infos
