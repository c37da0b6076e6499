"""The taught head's Grad-CAM against autograd: the conv5 maps as a leaf, the head's logit in torch."""

from __future__ import annotations

import numpy as np
import torch

from models.teach.cam import head_cam
from models.teach.features import extract
from models.teach.head import Head
from models.zoo.registry import ModelEntry
from tests.models.teach.pictures import CAM, scenes


def test_closed_form_cam_is_grad_cam(tiny: ModelEntry) -> None:
    assert tiny.network is not None and tiny.preprocess is not None
    picture = tiny.preprocess(scenes("house", 1, fresh=True)[0])[None]
    features = extract(tiny.network, picture, CAM, keep_maps=True)
    assert features.maps is not None
    units = features.maps.shape[1]
    rng = np.random.default_rng(0)
    head = Head(("a", "b"), "tiny", CAM, np.asarray(rng.random(units, np.float32), np.float32),
                np.asarray(rng.random(units, np.float32) + 0.5, np.float32),
                rng.normal(size=(2, units)).astype(np.float32), np.zeros(2, np.float32))
    for c in (0, 1):
        leaf = torch.from_numpy(features.maps[0]).double().requires_grad_()
        w, mu, sigma = (torch.from_numpy(x).double() for x in (head.weight, head.mean, head.std))
        logit = (w[c] * (leaf.mean(dim=(1, 2)) - mu) / sigma).sum()
        (grad,) = torch.autograd.grad(logit, leaf)
        want = torch.relu((grad.mean(dim=(1, 2))[:, None, None] * leaf.detach()).sum(0))
        want = want / want.max() if want.max() > 0 else want
        got = head_cam(head, features.maps[0], c)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-6)
        assert got.max() == 1.0
    np.testing.assert_allclose(features.pooled[0], features.maps[0].mean(axis=(1, 2)), rtol=1e-5, atol=1e-7)
