"""How well a layer *could* show a concept, beside how well its best single unit does.

Network Dissection (models/analysis/dissect.py) asks whether one unit's map matches a concept.
When it does not, there are two very different reasons, and a model card should say
which one holds:

* **resolution**: the layer's maps are too coarse for the concept. The *ideal unit* of
  a layer is the concept itself seen at that layer's resolution: each map pixel is the
  share of the concept inside the stride-wide window around its receptive-field centre.
  Dissected like any unit (same upsampling, quantile and IoU), it gives the highest IoU
  that layer's geometry allows.
* **distribution**: the layer knows where the concept is, but spreads it over several
  units. A *concept probe* (Net2Vec, Fong & Vedaldi 2018) is the best linear
  combination of a layer's units, ``w . a(x, y) + b``, fitted by logistic regression
  to the concept's share of each map pixel on one set of images, and then dissected
  like a unit on *other* images (the dissection's own; it is fitted on world seed
  ``seeds.PROBES``), so it cannot score by memorizing them.

A concept whose probe reaches a high IoU while no unit does is represented by that
layer, in a distributed code; one whose ideal unit is low is out of the layer's reach.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from models.analysis.concepts import Alignment, Concepts, iou_table


def ideal_maps(masks: torch.Tensor, align: Alignment, map_size: int) -> torch.Tensor:
    """N x K x S x S concept masks -> N x K x h x h maps of a layer's ideal unit.

    Map pixel i covers the input window of one stride centred at ``offset + i * stride``;
    its value is the share of that window the concept covers. ``masks`` are at input
    resolution (S = ``align.input_size``).
    """
    size = masks.shape[-1]
    scale = align.input_size / size  # input pixels per mask pixel
    centres = torch.arange(map_size, dtype=torch.float64) * align.stride + align.offset
    lo = (centres - max(align.stride, 1) / 2).view(-1, 1)
    hi = (centres + max(align.stride, 1) / 2).view(-1, 1)
    # Input pixel centres sit on integers (as models/geometry.py counts them), so mask
    # pixel j spans [j * scale - 0.5, (j + 1) * scale - 0.5]; its weight is the length it
    # shares with the window, so windows tile the input without double counting.
    edges = torch.arange(size + 1, dtype=torch.float64) * scale - 0.5
    left, right = edges[:-1].view(1, -1), edges[1:].view(1, -1)
    window = (torch.minimum(hi, right) - torch.maximum(lo, left)).clamp(min=0)  # h x S
    # Near the border part of a window lies off the picture: average over what is on it.
    window = (window / window.sum(1, keepdim=True).clamp(min=1e-9)).float()
    return torch.einsum("iy,nkyx,jx->nkij", window, masks.float(), window)


def ceiling(masks: torch.Tensor, concepts: Concepts, quantiles: Sequence[float], align: Alignment,
            map_size: int) -> torch.Tensor:
    """Per concept: the IoU of the layer's ideal unit, dissected like any unit."""
    iou, _ = iou_table(ideal_maps(masks, align, map_size), concepts, quantiles, align=align)
    return iou.diagonal()


def fit_probes(acts: torch.Tensor, targets: torch.Tensor, max_positions: int = 200_000,
               iterations: int = 60, l2: float = 1e-4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logistic regression of every concept on a layer's units, at every map pixel.

    ``acts``: N x C x h x w; ``targets``: N x K x h x w shares in [0, 1]. Units are
    standardized first; each concept's positives are up-weighted to balance its
    negatives (a mouth covers a thousandth of the pixels). Returns the K x C weights and
    K biases, in the units of the *raw* activations.
    """
    c, k = acts.shape[1], targets.shape[1]
    a = acts.permute(0, 2, 3, 1).reshape(-1, c)
    t = targets.permute(0, 2, 3, 1).reshape(-1, k)
    if len(a) > max_positions:  # a fixed, seeded sample keeps conv1 and conv2 cheap
        keep = torch.randperm(len(a), generator=torch.Generator().manual_seed(seed))[:max_positions]
        a, t = a[keep], t[keep]
    mean, std = a.mean(0), a.std(0).clamp(min=1e-6)
    z = (a - mean) / std
    share = t.mean(0).clamp(1e-6, 1 - 1e-6)
    pos_weight = ((1 - share) / share).clamp(max=1000.0)
    weight = torch.zeros(k, c, requires_grad=True)
    bias = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        logits = z @ weight.T + bias
        loss = F.binary_cross_entropy_with_logits(logits, t, pos_weight=pos_weight) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(loss_fn)
    w = weight.detach() / std
    return w, bias.detach() - w @ mean


def probe_maps(acts: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """N x C x h x w activations -> N x K x h x w probe scores (before the sigmoid)."""
    return torch.einsum("nchw,kc->nkhw", acts, weight) + bias.view(1, -1, 1, 1)


def probe_iou(fit_acts: torch.Tensor, fit_masks: torch.Tensor, test_acts: torch.Tensor, concepts: Concepts,
              quantiles: Sequence[float], align: Alignment) -> torch.Tensor:
    """Per concept: IoU on the test images of a probe fitted on the fit images.

    ``fit_masks`` are the fit images' concept masks at input resolution; ``concepts``
    holds the test images' masks, at the dissection's mask resolution.
    """
    targets = ideal_maps(fit_masks, align, fit_acts.shape[-1])
    weight, bias = fit_probes(fit_acts, targets)
    iou, _ = iou_table(probe_maps(test_acts, weight, bias), concepts, quantiles, align=align)
    return iou.diagonal()
